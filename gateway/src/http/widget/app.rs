//! The coachee's app: `/c/{channel}/`, a full-screen, installable chat for a web widget channel
//! (a web app manifest, icons in the channel's colour and a service worker), built on the
//! widget's protocol: history, the offline queue (kept in the browser, sent once when the
//! connection is back), reconnection without push, check-in buttons, thumbs on answers, and
//! "progress" for the coachee's summary. The service worker keeps the app's shell, so the app
//! opens (and takes messages) without a network.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{PublicWidgetConfig, widget_channel};
use crate::error::ApiError;
use crate::state::AppState;

/// The service worker (plain JavaScript, served as is).
const SERVICE_WORKER: &str = include_str!("../../../../widget-js/app-sw.js");

/// The app's default accent colour.
const DEFAULT_COLOR: (u8, u8, u8) = (0x3b, 0x5b, 0xdb);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/c/{channel}", get(redirect))
        .route("/c/{channel}/", get(page))
        .route("/c/{channel}/manifest.webmanifest", get(manifest))
        .route("/c/{channel}/sw.js", get(service_worker))
        .route("/c/{channel}/icon-{size}", get(icon))
}

/// The app lives under `/c/{channel}/` (the service worker's scope is that folder).
async fn redirect(Path(channel): Path<String>) -> Result<Redirect, ApiError> {
    let id = uuid::Uuid::parse_str(&channel).map_err(|_| ApiError::NotFound("channel"))?;
    Ok(Redirect::permanent(&format!("/c/{id}/")))
}

/// A channel's colour as RGB (`#rrggbb`; the default when absent or malformed).
fn rgb(public: &PublicWidgetConfig) -> (u8, u8, u8) {
    let Some(hex) = public.color.as_deref().and_then(|c| c.strip_prefix('#')) else {
        return DEFAULT_COLOR;
    };
    let byte = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
    };
    match (hex.len(), byte(0), byte(2), byte(4)) {
        (6, Some(r), Some(g), Some(b)) => (r, g, b),
        _ => DEFAULT_COLOR,
    }
}

fn css_color((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn title(public: &PublicWidgetConfig) -> String {
    public
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "Coach".into())
}

async fn page(
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Response, ApiError> {
    let (channel, settings) = widget_channel(&state, &channel).await?;
    let public = settings.public;
    let color = css_color(rgb(&public));
    let name = super::demo::html_escape(&title(&public));
    let lang = super::demo::html_escape(public.language.as_deref().unwrap_or("en"));
    let id = channel.id.0;
    let html = format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="{color}">
<title>{name}</title>
<link rel="manifest" href="manifest.webmanifest">
<link rel="icon" href="icon-192.png">
<link rel="apple-touch-icon" href="icon-192.png">
<style>html,body{{margin:0;height:100%;background:{color}}}</style>
</head>
<body>
<script src="/widget.js" data-channel="{id}" data-mode="app"></script>
</body>
</html>
"#
    );
    Ok((
        [
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' https: data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        Html(html),
    )
        .into_response())
}

async fn manifest(
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Response, ApiError> {
    let (channel, settings) = widget_channel(&state, &channel).await?;
    let public = settings.public;
    let color = css_color(rgb(&public));
    let name = title(&public);
    let short: String = name.chars().take(12).collect();
    let base = format!("/c/{}/", channel.id.0);
    let body = serde_json::json!({
        "name": name,
        "short_name": short,
        "id": base,
        "start_url": base,
        "scope": base,
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": color,
        "lang": public.language.as_deref().unwrap_or("en"),
        "icons": [
            { "src": "icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any" },
            { "src": "icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any" },
            { "src": "icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable" },
        ],
    });
    Ok((
        [(header::CONTENT_TYPE, "application/manifest+json")],
        Json(body),
    )
        .into_response())
}

async fn service_worker(
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Response, ApiError> {
    widget_channel(&state, &channel).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Browsers check for a new worker on each visit.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SERVICE_WORKER,
    )
        .into_response())
}

/// `icon-192.png` or `icon-512.png`: the channel's colour with a white speech bubble.
async fn icon(
    State(state): State<AppState>,
    Path((channel, size)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let size: u32 = match size.as_str() {
        "192.png" => 192,
        "512.png" => 512,
        _ => return Err(ApiError::NotFound("icon")),
    };
    let (_, settings) = widget_channel(&state, &channel).await?;
    let png = icon_png(size, rgb(&settings.public)).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        png,
    )
        .into_response())
}

/// A square icon: the colour, and a white rounded speech bubble inside the maskable safe zone
/// (the middle 80%).
pub fn icon_png(size: u32, (r, g, b): (u8, u8, u8)) -> Result<Vec<u8>, png::EncodingError> {
    let s = f64::from(size);
    // The bubble: a rounded rectangle with a tail at its lower left.
    let (left, right, top, bottom, radius) = (0.28 * s, 0.72 * s, 0.30 * s, 0.62 * s, 0.08 * s);
    let inside_bubble = |x: f64, y: f64| {
        let cx = x.clamp(left + radius, right - radius);
        let cy = y.clamp(top + radius, bottom - radius);
        let rounded = (x - cx).powi(2) + (y - cy).powi(2) <= radius * radius;
        let in_rect = (left..=right).contains(&x) && (top..=bottom).contains(&y);
        // The tail: a triangle below the bubble's left part.
        let tail =
            y > bottom && y < 0.74 * s && x > 0.34 * s && x < 0.34 * s + (0.74 * s - y) * 0.9;
        (in_rect && rounded) || tail
    };
    let mut pixels = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            if inside_bubble(px, py) {
                pixels.extend_from_slice(&[255, 255, 255]);
            } else {
                pixels.extend_from_slice(&[r, g, b]);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, size, size);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_pngs_of_their_size_in_the_channel_colour() {
        let bytes = icon_png(192, (0x12, 0x34, 0x56)).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (192, 192));
        // A corner is the colour, the middle is the white bubble.
        assert_eq!(&buf[0..3], &[0x12, 0x34, 0x56]);
        let middle = ((96 * 192 + 96) * 3) as usize;
        assert_eq!(&buf[middle..middle + 3], &[255, 255, 255]);
        let public = PublicWidgetConfig {
            color: Some("#zz0000".into()),
            ..PublicWidgetConfig::default()
        };
        assert_eq!(rgb(&public), DEFAULT_COLOR);
    }
}
