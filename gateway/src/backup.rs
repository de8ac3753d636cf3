//! `gateway backup --out FILE` and `gateway restore FILE`: a consistent copy of the embedded
//! default (the SQLite database and the media files) taken while the gateway runs, brought back
//! on another machine.
//!
//! The database is copied with SQLite's `VACUUM INTO`, which reads one snapshot (the gateway
//! keeps writing meanwhile) and writes a fresh file without free pages, so nothing erased before
//! the backup is in it. Media files are added after the snapshot: a file the snapshot refers to
//! was written before it. The vectors are not copied: they are derived from the documents in the
//! database, and `restore` indexes them again with the configured embedder (as `gateway reembed`
//! does), which also suits a target with another vector backend.
//!
//! A backup holds personal data and sealed channel secrets, never the master key that opens
//! them: it records the key's fingerprint, and `restore` refuses a target without the same key.
//! The file is written `0600`, under a temporary name first, so a failed backup leaves no
//! half-written file behind. Data erased after a backup was taken is still in that backup:
//! delete old backups on the retention schedule.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sqlx::Connection as _;

use crate::config::{Config, DatabaseBackend};
use crate::secrets::SecretBox;

/// The backup format this version writes and reads.
const FORMAT: u32 = 1;

/// The first member of every backup.
const MANIFEST: &str = "manifest.json";
/// The database's member.
const DATABASE: &str = "gateway.db";
/// Media files live under this member directory, as under `data_dir`.
const MEDIA: &str = "media";

/// What a backup holds, written first into it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The gateway version that wrote it.
    pub gateway_version: String,
    /// When the database snapshot was taken (RFC 3339).
    pub created_at: String,
    /// The master key's [`SecretBox::fingerprint`]: the target needs the same key.
    pub master_key_fingerprint: String,
    /// Rows per table in the snapshot (checked again after a restore).
    pub counts: BTreeMap<String, i64>,
    /// Media files.
    pub media_files: u64,
    /// Total bytes of media.
    pub media_bytes: u64,
}

/// The tables whose rows a backup counts and a restore checks.
const COUNTED: &[&str] = &[
    "tenants",
    "users",
    "channels",
    "contacts",
    "conversations",
    "messages",
    "documents",
    "programs",
    "enrollments",
];

/// The embedded database's path, or why this deployment is not backed up this way.
fn sqlite_path(config: &Config) -> anyhow::Result<PathBuf> {
    match config.database_backend()? {
        DatabaseBackend::Sqlite(path) => Ok(path),
        DatabaseBackend::Postgres(_) => bail!(
            "database.url is PostgreSQL: back it up with pg_dump (or your provider's snapshots), \
             and the Qdrant server with its snapshots. `gateway backup` copies the embedded \
             default (SQLite and the media under data_dir)"
        ),
    }
}

/// Rows per counted table of the database at `path`.
async fn counts(path: &Path) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true),
    )
    .await?;
    let mut counts = BTreeMap::new();
    for table in COUNTED {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await?;
        counts.insert((*table).to_owned(), n);
    }
    conn.close().await?;
    Ok(counts)
}

/// Every file under `dir` (none when it does not exist), sorted.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", d.display())),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn bar(len: u64, template: &str, show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Write a backup of the embedded deployment `config` describes to `out` (while it runs).
pub async fn create(config: &Config, out: &Path, show_progress: bool) -> anyhow::Result<Manifest> {
    let db = sqlite_path(config)?;
    anyhow::ensure!(
        db.exists(),
        "{} does not exist: nothing to back up (is data_dir right?)",
        db.display()
    );
    anyhow::ensure!(
        !out.exists(),
        "{} exists: choose a new file name, a backup never overwrites one",
        out.display()
    );
    let secrets = SecretBox::existing(&config.secrets.master_key, &config.data_dir)?
        .context("no master key (secrets.master_key or data_dir/master.key): is data_dir right?")?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".gateway-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a working folder in {}", parent.display()))?;
    let snapshot = work.path().join(DATABASE);

    // One consistent snapshot, read while the gateway keeps writing.
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .busy_timeout(std::time::Duration::from_secs(30)),
    )
    .await
    .with_context(|| format!("opening {}", db.display()))?;
    let target = snapshot.to_string_lossy().replace('\'', "''");
    sqlx::query(&format!("VACUUM INTO '{target}'"))
        .execute(&mut conn)
        .await
        .context("copying the database (VACUUM INTO)")?;
    conn.close().await?;
    let created_at = chrono::Utc::now().to_rfc3339();
    let counts = counts(&snapshot).await?;
    let media_dir = config.data_dir.join(MEDIA);
    let media = files_under(&media_dir)?;
    let mut media_bytes = 0;
    for f in &media {
        media_bytes += std::fs::metadata(f)?.len();
    }
    let manifest = Manifest {
        format: FORMAT,
        gateway_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        master_key_fingerprint: secrets.fingerprint(),
        counts,
        media_files: media.len() as u64,
        media_bytes,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)?;
    let partial = work.path().join("backup.partial");
    let show = show_progress;
    let db_bytes = std::fs::metadata(&snapshot)?.len();
    let written = tokio::task::spawn_blocking(move || -> anyhow::Result<PathBuf> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest_json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, manifest_json.as_slice())?;
        let progress = bar(
            db_bytes + media_bytes,
            "backing up [{bar:30}] {bytes}/{total_bytes}",
            show,
        );
        tar.append_file(DATABASE, &mut std::fs::File::open(&snapshot)?)?;
        progress.inc(db_bytes);
        for f in &media {
            let relative = f.strip_prefix(&media_dir)?;
            tar.append_path_with_name(f, Path::new(MEDIA).join(relative))?;
            progress.inc(std::fs::metadata(f)?.len());
        }
        progress.finish_and_clear();
        let gz = tar.into_inner()?;
        let mut file = gz.finish()?;
        file.flush()?;
        file.sync_all()?;
        Ok(partial)
    })
    .await??;
    std::fs::rename(&written, out)
        .with_context(|| format!("moving the backup to {}", out.display()))?;
    Ok(manifest)
}

/// What a restore brought back.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Documents indexed again (`None`: the models could not be loaded; `gateway reembed`
    /// indexes them later).
    pub reindexed: Option<usize>,
    /// Why the documents were not indexed, when they were not.
    pub reindex_problem: Option<String>,
}

/// Read the manifest (the first member) of the backup at `file`.
fn read_manifest(file: &Path) -> anyhow::Result<Manifest> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut entries = tar.entries().context("not a gateway backup (a .tar.gz)")?;
    let mut first = entries
        .next()
        .context("the backup is empty")?
        .context("not a gateway backup (a .tar.gz)")?;
    anyhow::ensure!(
        first.path()?.as_os_str() == MANIFEST,
        "not a gateway backup: its first member is not {MANIFEST}"
    );
    let mut text = String::new();
    first.read_to_string(&mut text)?;
    let manifest: Manifest = serde_json::from_str(&text).context("the backup's manifest")?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "the backup has format {}; this gateway reads format {FORMAT}",
        manifest.format
    );
    Ok(manifest)
}

/// Bring the backup at `file` back into the empty embedded deployment `config` describes, then
/// index its documents again.
pub async fn restore(
    config: &Config,
    file: &Path,
    show_progress: bool,
) -> anyhow::Result<Restored> {
    let db = sqlite_path(config)?;
    let manifest = read_manifest(file)?;
    if db.exists() {
        bail!(
            "{} exists: a restore only goes into an empty data directory (move it away first)",
            db.display()
        );
    }
    let media_dir = config.data_dir.join(MEDIA);
    if !files_under(&media_dir)?.is_empty() {
        bail!(
            "{} holds files: a restore only goes into an empty data directory",
            media_dir.display()
        );
    }
    // The channel secrets in the backup are sealed: only the same master key opens them.
    let key_file = config.data_dir.join("master.key");
    match SecretBox::existing(&config.secrets.master_key, &config.data_dir)? {
        None => bail!(
            "the backup's secrets are sealed with master key {} and this deployment has none: \
             copy master.key from the source's data_dir to {} (or set secrets.master_key to the \
             same key), then restore again",
            manifest.master_key_fingerprint,
            key_file.display()
        ),
        Some(key) if key.fingerprint() != manifest.master_key_fingerprint => bail!(
            "the backup's secrets are sealed with master key {}, this deployment's key is {}: \
             use the source's master.key (or secrets.master_key)",
            manifest.master_key_fingerprint,
            key.fingerprint()
        ),
        Some(_) => {}
    }
    crate::files::private_dir(&config.data_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".gateway-restore-")
        .tempdir_in(&config.data_dir)?;
    let (file_path, unpack) = (file.to_path_buf(), work.path().to_path_buf());
    let total = manifest.media_bytes;
    let show = show_progress;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let reader = std::fs::File::open(&file_path)?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
        let progress = bar(total, "restoring [{bar:30}] {bytes}/{total_bytes}", show);
        for entry in tar.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            let allowed = path.as_os_str() == MANIFEST
                || path.as_os_str() == DATABASE
                || path.starts_with(MEDIA);
            anyhow::ensure!(
                allowed,
                "unexpected member {} in the backup",
                path.display()
            );
            let size = entry.size();
            // `unpack_in` refuses members that would land outside the folder.
            anyhow::ensure!(
                entry.unpack_in(&unpack)?,
                "unsafe member {} in the backup",
                path.display()
            );
            if path.starts_with(MEDIA) {
                progress.inc(size);
            }
        }
        progress.finish_and_clear();
        Ok(())
    })
    .await??;
    let unpacked_db = work.path().join(DATABASE);
    anyhow::ensure!(unpacked_db.exists(), "the backup holds no database");
    {
        let mut conn = sqlx::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new().filename(&unpacked_db),
        )
        .await?;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        anyhow::ensure!(check == "ok", "the backup's database is damaged: {check}");
    }
    let found = counts(&unpacked_db).await?;
    anyhow::ensure!(
        found == manifest.counts,
        "the backup's database does not hold what its manifest lists: {found:?} against {:?}",
        manifest.counts
    );
    // Into place: the media first, the database last (its presence marks a restored deployment).
    let unpacked_media = work.path().join(MEDIA);
    if unpacked_media.exists() {
        if media_dir.exists() {
            std::fs::remove_dir(&media_dir)
                .with_context(|| format!("{} is not empty", media_dir.display()))?;
        }
        std::fs::rename(&unpacked_media, &media_dir)?;
        // Folders as the gateway makes them: private to its user.
        let mut folders = vec![media_dir.clone()];
        while let Some(dir) = folders.pop() {
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    folders.push(entry.path());
                }
            }
        }
    }
    if let Some(parent) = db.parent() {
        crate::files::private_dir(parent)?;
    }
    std::fs::rename(&unpacked_db, &db)?;
    crate::files::private_file(&db)?;

    // Open it as the gateway does (newer migrations apply), then index the documents again.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let store = crate::cli::open_ready_store(config, &shutdown).await?;
    let after = counts(&db).await?;
    let reindex =
        crate::knowledge::cli::reembed_with(config.clone(), store.clone(), show_progress).await;
    store.close().await;
    shutdown.cancel();
    anyhow::ensure!(
        after == manifest.counts,
        "the restored database holds {after:?}, the backup listed {:?}",
        manifest.counts
    );
    let (reindexed, reindex_problem) = match reindex {
        Ok((done, failed, pending)) if failed == 0 && pending == 0 => (Some(done), None),
        Ok((done, failed, pending)) => (
            Some(done),
            Some(format!(
                "{failed} document(s) failed and {pending} wait for a retry (GET /v1/documents)"
            )),
        ),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    Ok(Restored {
        manifest,
        reindexed,
        reindex_problem,
    })
}

/// `gateway backup --out FILE`.
pub async fn backup_command(config: Config, out: PathBuf) -> anyhow::Result<()> {
    crate::telemetry::init_tracing(&config.log);
    let manifest = create(&config, &out, true).await?;
    println!(
        "backup written to {} (0600): {}; {} media file(s); secrets sealed with master key {} \
         (not in the backup: keep data_dir/master.key or secrets.master_key with it)",
        out.display(),
        describe(&manifest.counts),
        manifest.media_files,
        manifest.master_key_fingerprint
    );
    Ok(())
}

/// `gateway restore FILE`.
pub async fn restore_command(config: Config, file: PathBuf) -> anyhow::Result<()> {
    crate::telemetry::init_tracing(&config.log);
    let restored = restore(&config, &file, true).await?;
    println!(
        "restored the backup of {} into {}: {}; {} media file(s)",
        restored.manifest.created_at,
        config.data_dir.display(),
        describe(&restored.manifest.counts),
        restored.manifest.media_files
    );
    match (restored.reindexed, restored.reindex_problem) {
        (Some(n), None) => println!("indexed {n} document(s) again"),
        (_, Some(problem)) => println!(
            "the documents are not all indexed yet ({problem}): run `gateway reembed` once the \
             models are in place"
        ),
        (None, None) => {}
    }
    Ok(())
}

fn describe(counts: &BTreeMap<String, i64>) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}
