//! The account mails: confirming a new account's address (`auth.verify_email`) and resetting
//! a forgotten password, each through a single-use token sent by e-mail (stored hashed).

use chrono::Utc;

use super::{Auth, CONFIRMATION_HOURS, password, random_token, refresh_hash};
use crate::error::ApiError;
use crate::store::PendingVerification;
use crate::tenancy::SystemScope;

impl Auth {
    /// Whether new accounts confirm their e-mail address before logging in.
    pub fn verifies_email(&self) -> bool {
        self.verify_email
    }

    /// A confirmation token and its stored form, when new accounts confirm their address.
    pub(super) fn new_confirmation(
        &self,
    ) -> Result<Option<(String, PendingVerification)>, ApiError> {
        if !self.verify_email {
            return Ok(None);
        }
        let token = format!("ev_{}", random_token()?);
        let pending = PendingVerification {
            token_hash: refresh_hash(&token),
            expires_at: Utc::now() + chrono::Duration::hours(CONFIRMATION_HOURS),
        };
        Ok(Some((token, pending)))
    }

    /// E-mail the confirmation link. A failure is logged, not returned: the account exists
    /// and `POST /v1/auth/verify-email/resend` sends another link.
    pub(super) async fn send_confirmation(&self, email: &str, token: &str) {
        let Some(mailer) = &self.mailer else { return };
        let link = format!(
            "{}/console#/verify-email?token={token}",
            self.public_url.trim_end_matches('/')
        );
        let body = format!(
            "Welcome to the coaching gateway.\n\n\
             Open this link within {CONFIRMATION_HOURS} hours to confirm your e-mail address:\n{link}\n\n\
             Or send this token to POST /v1/auth/verify-email:\n{token}\n\n\
             If you did not make an account, ignore this message.\n"
        );
        if let Err(e) = mailer
            .send(email, "Confirm your e-mail address", body)
            .await
        {
            tracing::warn!(error = %e, "confirmation e-mail not sent");
        }
    }

    /// Confirm an account's address with the token from its link.
    pub async fn confirm_email(&self, token: &str) -> Result<(), ApiError> {
        self.store
            .confirm_email(&SystemScope::new("confirm e-mail"), refresh_hash(token))
            .await?
            .map(|_| ())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this confirmation link is unknown, used or expired: ask for a new one with \
                     POST /v1/auth/verify-email/resend"
                        .into(),
                )
            })
    }

    /// Send a new confirmation link to an account that has not confirmed its address. The
    /// answer is the same whether the account exists, or is confirmed already, or not.
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), ApiError> {
        if !self.verify_email {
            return Err(ApiError::Forbidden(
                "this gateway does not ask for e-mail confirmation (auth.verify_email)".into(),
            ));
        }
        let sys = SystemScope::new("resend confirmation");
        let Some(creds) = self.store.credentials(&sys, email).await? else {
            return Ok(());
        };
        let Some((token, pending)) = self.new_confirmation()? else {
            return Ok(());
        };
        if self
            .store
            .renew_email_verification(&sys, creds.user.id, pending)
            .await?
        {
            self.send_confirmation(&creds.user.email, &token).await;
        }
        Ok(())
    }

    /// E-mail a single-use reset link (valid 30 minutes) if the account exists. The answer is
    /// the same whether it exists or not.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), ApiError> {
        let Some(mailer) = &self.mailer else {
            return Err(ApiError::Forbidden(
                "password reset is disabled on this gateway: its operator has not configured an \
                 SMTP relay (smtp.url)"
                    .into(),
            ));
        };
        let sys = SystemScope::new("password reset");
        let Some(creds) = self.store.credentials(&sys, email).await? else {
            tracing::info!("password reset asked for an unknown e-mail");
            return Ok(());
        };
        let token = format!("pr_{}", random_token()?);
        let expires = Utc::now() + chrono::Duration::minutes(30);
        self.store
            .create_password_reset(&sys, creds.user.id, refresh_hash(&token), expires)
            .await?;
        let link = format!(
            "{}/console#/reset-password?token={token}",
            self.public_url.trim_end_matches('/')
        );
        let body = format!(
            "Someone asked to reset the password of your coaching gateway account.\n\n\
             Open this link within 30 minutes to choose a new one:\n{link}\n\n\
             Or send this token to POST /v1/auth/password-reset/confirm:\n{token}\n\n\
             If it was not you, ignore this message: your password stays as it is.\n"
        );
        mailer
            .send(&creds.user.email, "Reset your password", body)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "password reset e-mail not sent");
                ApiError::Unavailable("the e-mail could not be sent; try again later".into())
            })
    }

    /// Set a new password with a reset token; every session of the user ends.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<(), ApiError> {
        let sys = SystemScope::new("password reset");
        let invalid =
            || ApiError::Unauthorized("this reset token is unknown, used or expired".into());
        let user = self
            .store
            .password_reset(&sys, refresh_hash(token), false)
            .await?
            .ok_or_else(invalid)?;
        let me = self.store.user(&sys, user).await?;
        if let Some(why) = password::weakness(new_password, &me.email) {
            return Err(ApiError::Unprocessable(format!("new_password: {why}")));
        }
        let hash = self
            .hasher
            .hash(new_password.to_owned())
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        // Consumed only now, so a refused password does not burn the token; of two
        // concurrent uses, one wins.
        self.store
            .password_reset(&sys, refresh_hash(token), true)
            .await?
            .ok_or_else(invalid)?;
        let ended = self.store.set_password(&sys, user, &hash).await?;
        // The reset link reached the mailbox: the address is confirmed.
        self.store.email_confirmed_by_reset(&sys, user).await?;
        self.end_sessions(ended).await
    }
}
