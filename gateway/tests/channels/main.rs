#![allow(clippy::unwrap_used, missing_docs)]
//! WhatsApp, Telegram and the SMS plugin end to end against loopback fakes of their provider
//! APIs, on SQLite and PostgreSQL: signed webhooks in, brain answers out through the outbox,
//! redeliveries and out-of-order statuses, failures with retries, dead letters and their resend.

#[path = "../api_support/mod.rs"]
mod api_support;
#[path = "../common/mod.rs"]
mod common;
mod delivery;
mod plugin;
mod program_scheduler;
mod program_window;
mod programs;
mod support;
mod telegram;
mod whatsapp;

macro_rules! on_both_backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::$module::$name(&crate::common::sqlite().await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::$module::$name(&crate::common::postgres().await).await;
            })*
        }
    };
}

on_both_backends!(
    whatsapp::whatsapp_conversation_end_to_end,
    whatsapp::the_whatsapp_window_holds_free_form_replies,
    whatsapp::a_131047_falls_back_to_the_template,
    whatsapp::whatsapp_media_is_fetched_checked_and_erased,
    whatsapp::a_suspended_tenants_webhooks_are_refused_until_resumed,
    telegram::telegram_conversation_end_to_end,
    telegram::a_refused_bot_leaves_no_channel,
    telegram::telegram_polling_mode,
    delivery::failures_are_retried_in_order_and_dead_letters_resent,
    plugin::the_sms_plugin_carries_a_conversation,
    programs::a_week_of_check_ins_on_whatsapp_and_telegram,
    program_scheduler::catch_up_after_downtime,
    program_scheduler::two_schedulers_never_send_a_step_twice,
    program_window::thirty_days_on_whatsapp_without_a_131047,
    program_window::enrollments_end_and_start_over,
);
