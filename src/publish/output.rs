//! Writing a build of a site and switching to it in one step. `output_dir` is a symbolic link
//! to the current build, kept beside it in `.{name}.builds/`; a publish renders into a new
//! build directory, hard-links every file whose bytes did not change from the current build
//! (so it keeps its modification time and rsync and caches do not churn), and swaps the link
//! with one `rename`. The previous build is kept for `publish --rollback`; older ones go.
//! A publish that changes nothing keeps the current build and removes its own.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::PublishError;

/// What one publish did to the site's files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    /// Files that are new or whose bytes changed.
    pub written: usize,
    /// Files with the same bytes as before (kept as they were, modification time included).
    pub unchanged: usize,
    /// Files of the previous build that this one does not have.
    pub removed: usize,
}

/// A build being written.
pub struct Build {
    dir: PathBuf,
    /// The build it replaces, when there is one.
    current: Option<PathBuf>,
    written: BTreeSet<PathBuf>,
    counts: FileCounts,
    target: Target,
}

/// Where a build goes when it is finished.
#[derive(Debug, Clone)]
enum Target {
    /// Switched to atomically: `output_dir` is the link, builds live in `builds`.
    Live { link: PathBuf, builds: PathBuf },
    /// Written into a directory and left there (`publish --preview DIR`).
    Preview,
}

/// Marks a directory tthc-sync wrote, so that it may clear it next time.
const PREVIEW_MARK: &str = ".tthc-sync-preview";
/// How many builds are kept: the current one and the one before (for rollback).
const KEPT_BUILDS: usize = 2;

fn io_error(path: &Path, action: &str) -> impl FnOnce(io::Error) -> PublishError {
    let path = path.to_path_buf();
    let action = action.to_string();
    move |error| PublishError::Io {
        path,
        action,
        error,
    }
}

/// The directory the builds of `link` live in: `.{name}.builds` beside it.
pub fn builds_dir(link: &Path) -> PathBuf {
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".to_string());
    link.with_file_name(format!(".{name}.builds"))
}

/// The build `link` points at, when it is a link into `builds`; an error when `link` is
/// something else (a directory or file tthc-sync did not make is never replaced).
fn current_build(link: &Path, builds: &Path) -> Result<Option<PathBuf>, PublishError> {
    match fs::symlink_metadata(link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(link, "read")(e)),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(link).map_err(io_error(link, "read the link"))?;
            let target = if target.is_absolute() {
                target
            } else {
                link.parent().unwrap_or(Path::new("")).join(target)
            };
            Ok(target.is_dir().then(|| builds.join(target.file_name().unwrap_or_default())))
        }
        Ok(_) => Err(PublishError::OutputDir {
            path: link.to_path_buf(),
            message: "exists and is not the link tthc-sync publishes through; move it away (tthc-sync never replaces a directory it did not make) or set another output_dir".into(),
        }),
    }
}

/// A relative path inside a build, checked: no `..`, no root, no empty part.
fn inside(path: &str) -> Result<PathBuf, PublishError> {
    let p = Path::new(path);
    let fine = !path.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    if fine {
        Ok(p.to_path_buf())
    } else {
        Err(PublishError::UnsafePath(path.to_string()))
    }
}

impl Build {
    /// Starts a build that will replace what `link` points at.
    pub fn live(link: &Path) -> Result<Build, PublishError> {
        let builds = builds_dir(link);
        let current = current_build(link, &builds)?;
        fs::create_dir_all(&builds).map_err(io_error(&builds, "create"))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
        let dir = builds.join(format!("build-{stamp}"));
        fs::create_dir(&dir).map_err(io_error(&dir, "create"))?;
        Ok(Build {
            dir,
            current,
            written: BTreeSet::new(),
            counts: FileCounts::default(),
            target: Target::Live {
                link: link.to_path_buf(),
                builds,
            },
        })
    }

    /// Starts a build written straight into `dir` (a preview): `dir` must be new, empty, or
    /// a preview written before.
    pub fn preview(dir: &Path) -> Result<Build, PublishError> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(io_error(dir, "read"))?;
            let empty = entries.next().is_none();
            if !empty && !dir.join(PREVIEW_MARK).exists() {
                return Err(PublishError::OutputDir {
                    path: dir.to_path_buf(),
                    message: "is not empty and was not written by `tthc-sync publish --preview`; choose a new directory".into(),
                });
            }
            fs::remove_dir_all(dir).map_err(io_error(dir, "clear"))?;
        }
        fs::create_dir_all(dir).map_err(io_error(dir, "create"))?;
        fs::write(dir.join(PREVIEW_MARK), b"").map_err(io_error(dir, "write"))?;
        Ok(Build {
            dir: dir.to_path_buf(),
            current: None,
            written: BTreeSet::new(),
            counts: FileCounts::default(),
            target: Target::Preview,
        })
    }

    /// Writes one file of the build (`path` relative, with `/`); when the current build has
    /// the same bytes there, links to its file instead.
    pub fn write(&mut self, path: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let rel = inside(path)?;
        let target = self.dir.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent, "create"))?;
        }
        let same = self.current.as_ref().map(|c| c.join(&rel)).filter(|old| {
            fs::metadata(old).is_ok_and(|m| m.len() == bytes.len() as u64)
                && fs::read(old).is_ok_and(|b| b == bytes)
        });
        match same {
            Some(old) if fs::hard_link(&old, &target).is_ok() => self.counts.unchanged += 1,
            _ => {
                fs::write(&target, bytes).map_err(io_error(&target, "write"))?;
                self.counts.written += 1;
            }
        }
        self.written.insert(rel);
        Ok(())
    }

    /// The files of the current build this build did not write.
    fn removed(&self) -> usize {
        let Some(current) = &self.current else {
            return 0;
        };
        let mut removed = 0;
        let mut stack = vec![current.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(current)
                    && !self.written.contains(rel)
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Finishes the build: switches the site to it (unless it changes nothing, when the
    /// current build stays), keeps the previous one, removes older ones.
    pub fn finish(mut self) -> Result<FileCounts, PublishError> {
        self.counts.removed = self.removed();
        let Target::Live { link, builds } = self.target.clone() else {
            return Ok(self.counts);
        };
        if self.current.is_some() && self.counts.written == 0 && self.counts.removed == 0 {
            fs::remove_dir_all(&self.dir).map_err(io_error(&self.dir, "remove"))?;
            return Ok(self.counts);
        }
        switch_link(&link, &self.dir)?;
        prune(&builds, &self.dir, self.current.as_deref())?;
        Ok(self.counts)
    }

    /// Gives up the build (a failed publish): the site stays as it was.
    pub fn abandon(self) {
        if matches!(self.target, Target::Live { .. }) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Points `link` at `build` in one step: a new link beside it, renamed over it.
fn switch_link(link: &Path, build: &Path) -> Result<(), PublishError> {
    let parent = link.parent().unwrap_or(Path::new(""));
    let relative = build.strip_prefix(parent).unwrap_or(build);
    let temporary = link.with_file_name(format!(
        ".{}.switch",
        link.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&temporary);
    symlink(relative, &temporary).map_err(io_error(&temporary, "create the link"))?;
    fs::rename(&temporary, link).map_err(io_error(link, "switch the link"))?;
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "publishing switches a symbolic link, which needs a Unix system",
    ))
}

/// The builds in `builds`, oldest first (their names sort by time).
fn list_builds(builds: &Path) -> Result<Vec<PathBuf>, PublishError> {
    let mut list: Vec<PathBuf> = fs::read_dir(builds)
        .map_err(io_error(builds, "read"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("build-"))
        })
        .collect();
    list.sort();
    Ok(list)
}

/// Removes builds other than the current and the previous one.
fn prune(builds: &Path, current: &Path, previous: Option<&Path>) -> Result<(), PublishError> {
    let keep: Vec<&Path> = [Some(current), previous].into_iter().flatten().collect();
    debug_assert!(keep.len() <= KEPT_BUILDS);
    for build in list_builds(builds)? {
        if !keep.contains(&build.as_path()) {
            fs::remove_dir_all(&build).map_err(io_error(&build, "remove"))?;
        }
    }
    Ok(())
}

/// Switches `link` back to the build before the current one; returns the build restored.
pub fn rollback(link: &Path) -> Result<PathBuf, PublishError> {
    let builds = builds_dir(link);
    let Some(current) = current_build(link, &builds)? else {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "nothing has been published there yet".into(),
        });
    };
    let all = list_builds(&builds)?;
    let previous = all
        .iter()
        .rev()
        .find(|b| b.as_path() != current.as_path())
        .cloned();
    let Some(previous) = previous else {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "only one build has been published".into(),
        });
    };
    switch_link(link, &previous)?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn unchanged_files_keep_their_time_and_rollback_restores_the_previous_build() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"one").unwrap();
        build.write("thu-tuc/1.001193.html", b"page").unwrap();
        let counts = build.finish().unwrap();
        assert_eq!(
            (counts.written, counts.unchanged, counts.removed),
            (2, 0, 0)
        );
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");
        let page_time = mtime(&link.join("thu-tuc/1.001193.html"));

        std::thread::sleep(Duration::from_millis(20));
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"two").unwrap();
        build.write("thu-tuc/1.001193.html", b"page").unwrap();
        let counts = build.finish().unwrap();
        assert_eq!(
            (counts.written, counts.unchanged, counts.removed),
            (1, 1, 0)
        );
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"two");
        assert_eq!(mtime(&link.join("thu-tuc/1.001193.html")), page_time);

        // Nothing changed: no new build, the link stays.
        let before = fs::read_link(&link).unwrap();
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"two").unwrap();
        build.write("thu-tuc/1.001193.html", b"page").unwrap();
        let counts = build.finish().unwrap();
        assert_eq!((counts.written, counts.unchanged), (0, 2));
        assert_eq!(fs::read_link(&link).unwrap(), before);
        assert_eq!(list_builds(&builds_dir(&link)).unwrap().len(), 2);

        rollback(&link).unwrap();
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");

        // A third build prunes the oldest; a page gone counts as removed.
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"three").unwrap();
        let counts = build.finish().unwrap();
        assert_eq!(counts.removed, 1);
        assert!(!link.join("thu-tuc/1.001193.html").exists());
        assert_eq!(list_builds(&builds_dir(&link)).unwrap().len(), 2);
    }

    #[test]
    fn a_directory_not_made_by_tthc_sync_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        fs::create_dir(&link).unwrap();
        fs::write(link.join("index.html"), b"hand-made").unwrap();
        let err = Build::live(&link).err().unwrap();
        assert!(
            err.to_string()
                .contains("not the link tthc-sync publishes through"),
            "{err}"
        );
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"hand-made");
        let err = Build::preview(&link).err().unwrap();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn paths_cannot_leave_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut build = Build::preview(&dir.path().join("p")).unwrap();
        for bad in ["../x.html", "/etc/passwd", "a/../../b", "", "a\\..\\b"] {
            assert!(
                matches!(build.write(bad, b"x"), Err(PublishError::UnsafePath(_))),
                "{bad}"
            );
        }
        build.write("thu-tuc/a.html", b"x").unwrap();
    }
}
