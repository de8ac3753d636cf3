//! Shared by the benchmarks: the machine's description and writing a section of
//! docs/BENCHMARKS.md (between `<!-- name:start -->` and `<!-- name:end -->`).

#![allow(clippy::unwrap_used, dead_code)]

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

pub fn write_section(name: &str, markdown: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/BENCHMARKS.md");
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let (start, end) = (start.as_str(), end.as_str());
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let section = format!("{start}\n{markdown}{end}");
    let doc = match (doc.find(start), doc.find(end)) {
        (Some(a), Some(b)) => format!("{}{}{}", &doc[..a], section, &doc[b + end.len()..]),
        _ => format!("{}\n{}\n", doc.trim_end(), section),
    };
    std::fs::write(&path, doc).unwrap();
    eprintln!("wrote {}", path.display());
}
