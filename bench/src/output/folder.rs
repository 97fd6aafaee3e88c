//! Results folders: where a run writes (`results/<preset>-<UTC time>` unless given), named
//! so that they sort by time.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The run's output folder: given, or `results/<scenario>-<UTC time>`.
pub fn out_dir(given: Option<&Path>, scenario: &str) -> Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("results").join(format!(
            "{scenario}-{}",
            compact_utc(std::time::SystemTime::now())
        )),
    };
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `20261123-091650` (UTC), for folder names that sort by time.
pub fn compact_utc(time: std::time::SystemTime) -> String {
    // "Mon, 23 Nov 2026 09:16:50 GMT"
    let text = httpdate::fmt_http_date(time);
    let parts: Vec<&str> = text.split_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match parts.as_slice() {
        [_, day, month, year, clock, _] => {
            let month = MONTHS.iter().position(|m| m == month).map_or(0, |i| i + 1);
            format!("{year}{month:02}{day}-{}", clock.replace(':', ""))
        }
        _ => text.replace([' ', ',', ':'], ""),
    }
}

#[cfg(test)]
mod folder_tests {
    use super::*;

    #[test]
    fn result_folders_sort_by_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_425_410);
        assert_eq!(compact_utc(t), "20261123-091650");
    }
}
