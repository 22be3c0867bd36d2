//! A NAS mounted where drplan runs: its recovery points read as a file system (the folders
//! directly under the path, every file below a point by its path relative to the point, its
//! size, its MD5 and its modification time), so they are judged against the manifest like a
//! bucket's. A NAS reached through an S3 endpoint is read by `drplan_provider_aws::NasStore`.

use std::io::Read;
use std::path::{Path, PathBuf};

use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_core::recovery::{ObjectMeta, PointContents};
use md5::{Digest, Md5};

/// The largest manifest read, as for a bucket.
const MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Whether the share is mounted at `path` (a directory is there).
pub fn mounted(path: &Path) -> bool {
    path.is_dir()
}

fn error(what: &str, path: &Path, e: &std::io::Error) -> ProviderError {
    let class = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorClass::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorClass::Denied,
        _ => ErrorClass::Failed,
    };
    ProviderError::new(class, format!("{what} {}: {e}", path.display()))
}

/// The folders directly under `root`, and one "call" (the directory read).
pub fn list_points(root: &Path) -> Result<(Vec<String>, u32), ProviderError> {
    let entries = std::fs::read_dir(root).map_err(|e| error("reading", root, &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| error("reading", root, &e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    Ok((names, 1))
}

/// Every file under `root/point`, by its path relative to the point, and the manifest's
/// content when `manifest` names one that is there.
pub fn read_point(root: &Path, point: &str, manifest: Option<&str>) -> Result<PointContents, ProviderError> {
    let folder = root.join(point);
    let mut files = Vec::new();
    walk(&folder, &mut files)?;
    files.sort();
    let mut contents = PointContents::default();
    for file in files {
        let Some(name) = file.strip_prefix(&folder).ok().and_then(|p| p.to_str()).map(|p| p.replace('\\', "/")) else {
            continue;
        };
        let meta = std::fs::metadata(&file).map_err(|e| error("reading", &file, &e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        if manifest == Some(name.as_str()) {
            if meta.len() > MANIFEST_MAX_BYTES {
                return Err(ProviderError::new(
                    ErrorClass::Invalid,
                    format!(
                        "the manifest {} is {} bytes, more than a manifest holds: not read",
                        file.display(),
                        meta.len()
                    ),
                ));
            }
            contents.manifest = Some(std::fs::read(&file).map_err(|e| error("reading", &file, &e))?);
        }
        contents.objects.push(ObjectMeta {
            name,
            size: meta.len(),
            md5: Some(md5_of(&file)?),
            crc32c: None,
            modified,
            class: None,
        });
    }
    Ok(contents)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ProviderError> {
    for entry in std::fs::read_dir(dir).map_err(|e| error("reading", dir, &e))? {
        let entry = entry.map_err(|e| error("reading", dir, &e))?;
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out)?,
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    Ok(())
}

/// The MD5 of a file's content, lowercase hex, read in blocks.
fn md5_of(file: &Path) -> Result<String, ProviderError> {
    let mut f = std::fs::File::open(file).map_err(|e| error("reading", file, &e))?;
    let mut hasher = Md5::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut block).map_err(|e| error("reading", file, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_folders_and_their_files_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("20261201_070000/db")).unwrap();
        std::fs::write(dir.path().join("20261201_070000/db/part-1"), b"hello").unwrap();
        std::fs::write(dir.path().join("20261201_070000/manifest.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("README"), b"not a point").unwrap();
        let (names, calls) = list_points(dir.path()).unwrap();
        assert_eq!((names, calls), (vec!["20261201_070000".to_string()], 1));
        let c = read_point(dir.path(), "20261201_070000", Some("manifest.json")).unwrap();
        assert_eq!(c.manifest.as_deref(), Some(&b"{}"[..]));
        let part = c.objects.iter().find(|o| o.name == "db/part-1").unwrap();
        assert_eq!(part.md5.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert_eq!(list_points(&dir.path().join("nothing")).unwrap_err().class, ErrorClass::NotFound);
    }
}
