//! `make dist` (scripts/dist.sh): the release tarball runs without a Rust toolchain. Built from
//! the binary `cargo test --workspace` made, unpacked in a fresh directory and started with
//! `PATH=/usr/bin:/bin` (no cargo, no build tree) on its shipped example configuration: it
//! becomes ready, and its SMS plugin (from the tarball) is loaded.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::path::Path;
use std::process::Command;

use coach_e2e::{Gateway, gateway_bin};

#[tokio::test]
async fn the_release_tarball_serves_without_a_toolchain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = gateway_bin()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let out = tempfile::tempdir().unwrap();
    let made = Command::new("bash")
        .arg(root.join("scripts/dist.sh"))
        .arg(out.path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tarball = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let unpacked = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .args(["-xzf", &tarball, "-C"])
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(untar.success());
    let name = Path::new(&tarball)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_owned();
    let home = unpacked.path().join(&name);
    for file in [
        "bin/gateway",
        "plugins/libcoach_sms_twilio.so",
        "gateway.toml.example",
        "coach-gateway.service",
        "README.md",
        "INSTALL.txt",
        "scripts/models.sh",
    ] {
        assert!(home.join(file).exists(), "{file} is not in the tarball");
    }

    let config = home.join("gateway.toml.example");
    let plugins = home.join("plugins");
    let gw = Gateway::start_bin(
        &home.join("bin/gateway"),
        unpacked.path().join("data"),
        &[
            ("PATH", "/usr/bin:/bin"),
            ("GATEWAY_CONFIG", config.to_str().unwrap()),
            ("GATEWAY__PROVIDERS__PLUGIN_DIR", plugins.to_str().unwrap()),
            (
                "GATEWAY__BRAIN__MODELS_DIR",
                home.join("models").to_str().unwrap(),
            ),
        ],
    )
    .await
    .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        let r = reqwest::get(format!("{}/readyz", gw.base_url))
            .await
            .unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the unpacked gateway never became ready");
    let doc = reqwest::get(format!("{}/openapi.json", gw.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        doc.contains("\"sms\""),
        "the tarball's SMS plugin was not loaded"
    );
    let demo = reqwest::get(format!("{}/demo", gw.base_url)).await.unwrap();
    assert_eq!(
        demo.status(),
        404,
        "the example configuration turns the demo off"
    );
    assert_eq!(gw.terminate().await.unwrap(), Some(0));
}
