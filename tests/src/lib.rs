//! Helpers for the end-to-end tests: start a real `gateway` process on port 0 with its own data
//! directory and environment, wait until it listens, and stop it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `gateway` binary cargo built beside this test executable.
pub fn gateway_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/gateway
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = profile_dir.join(format!("gateway{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `make test` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A running gateway process; killed when dropped.
pub struct Gateway {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl Gateway {
    /// Start `gateway serve` on 127.0.0.1:0 with `data_dir` and extra `GATEWAY__*` variables.
    pub async fn start(data_dir: PathBuf, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(gateway_bin());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GATEWAY__HTTP__ADDR", "127.0.0.1:0")
            .env("GATEWAY__DATA_DIR", &data_dir)
            .env("GATEWAY__LOG__FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning gateway")?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default().to_owned();
                    return Ok::<_, anyhow::Error>(addr);
                }
            }
            bail!("gateway exited before listening")
        })
        .await
        .context("gateway did not start listening within 60 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base_url: format!("http://{addr}"), data_dir })
    }

    /// Send SIGTERM and wait for the process to exit; returns its exit code.
    pub async fn terminate(mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().context("gateway already exited")?;
        let status = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("gateway did not exit within 30 s of SIGTERM")??;
        Ok(status.code())
    }
}
