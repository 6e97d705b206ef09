//! Writing a build of a site and switching to it in one step. `output_dir` is a symbolic link
//! to the current build, kept beside it in `.{name}.builds/`; a publish renders into a new
//! build directory, hard-links every file whose bytes did not change from the current build
//! (so it keeps its modification time and rsync and caches do not churn), and swaps the link
//! with one `rename`. The build it replaced is kept (named in `previous`) for `publish
//! --rollback`; any other build (one a crashed publish left half-written, one rolled away
//! from) is removed by the next publish. A publish that changes nothing keeps the current
//! build and removes its own. One publish or rollback of a site at a time: each holds the
//! builds directory's lock file while it works.

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
enum Target {
    /// Switched to atomically: `output_dir` is the link, builds live in `builds`; the lock is
    /// held until the build is finished or given up.
    Live {
        link: PathBuf,
        builds: PathBuf,
        _lock: fs::File,
    },
    /// Written into a directory and left there (`publish --preview DIR`).
    Preview,
}

/// Marks a directory tthc-sync wrote, so that it may clear it next time.
const PREVIEW_MARK: &str = ".tthc-sync-preview";
/// Names the build before the current one, for rollback.
const PREVIOUS: &str = "previous";
const LOCK: &str = ".lock";
const BUILD_PREFIX: &str = "build-";

fn io_error(path: &Path, action: &str) -> impl FnOnce(io::Error) -> PublishError {
    let path = path.to_path_buf();
    let action = action.to_string();
    move |error| PublishError::Io {
        path,
        action,
        error,
    }
}

pub use crate::config::builds_dir;

/// Takes the site's lock, waiting for another publish or rollback of it to finish.
fn lock(builds: &Path) -> Result<fs::File, PublishError> {
    fs::create_dir_all(builds).map_err(io_error(builds, "create"))?;
    let path = builds.join(LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path, "open"))?;
    if file.try_lock().is_err() {
        tracing::info!(lock = %path.display(), "another publish of this site is running; waiting for it");
        file.lock().map_err(io_error(&path, "lock"))?;
    }
    Ok(file)
}

/// The build `link` points at, when it is a link into `builds`; an error when `link` is
/// something else (a directory, a file or a link tthc-sync did not make is never replaced).
fn current_build(link: &Path, builds: &Path) -> Result<Option<PathBuf>, PublishError> {
    let refuse = |what: &str| PublishError::OutputDir {
        path: link.to_path_buf(),
        message: format!(
            "{what}; tthc-sync publishes through a link it makes itself and never replaces what it did not make: move it away or set another output_dir"
        ),
    };
    match fs::symlink_metadata(link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(link, "read")(e)),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(link).map_err(io_error(link, "read the link"))?;
            let parent = link.parent().unwrap_or(Path::new(""));
            let resolved = if target.is_absolute() {
                target.clone()
            } else {
                parent.join(&target)
            };
            let name = resolved.file_name().map(|n| n.to_os_string());
            let ours = resolved.parent() == Some(builds);
            match name {
                Some(name)
                    if ours
                        && name.to_string_lossy().starts_with(BUILD_PREFIX)
                        && builds.join(&name).is_dir() =>
                {
                    Ok(Some(builds.join(name)))
                }
                _ => Err(refuse(&format!(
                    "is a link to {}, not to a build of its own",
                    target.display()
                ))),
            }
        }
        Ok(meta) if meta.is_dir() => Err(refuse("exists and is a directory")),
        Ok(_) => Err(refuse("exists and is a file")),
    }
}

/// The build named in `previous`, when it is still there.
fn previous_build(builds: &Path) -> Option<PathBuf> {
    let name = fs::read_to_string(builds.join(PREVIOUS)).ok()?;
    let name = name.trim();
    let path = builds.join(name);
    (name.starts_with(BUILD_PREFIX) && !name.contains('/') && path.is_dir()).then_some(path)
}

/// Records which build a rollback goes back to (none: `None`).
fn set_previous(builds: &Path, previous: Option<&Path>) -> Result<(), PublishError> {
    let file = builds.join(PREVIOUS);
    match previous.and_then(Path::file_name) {
        Some(name) => {
            let temporary = builds.join(".previous.new");
            fs::write(&temporary, name.to_string_lossy().as_bytes())
                .map_err(io_error(&temporary, "write"))?;
            fs::rename(&temporary, &file).map_err(io_error(&file, "write"))
        }
        None => match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&file, "remove")(e)),
            _ => Ok(()),
        },
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
        // Refused before anything is created beside what is in the way.
        current_build(link, &builds)?;
        let lock = lock(&builds)?;
        let current = current_build(link, &builds)?;
        let previous = previous_build(&builds);
        // What a crashed publish left, or a build rolled away from: never a rollback target.
        let keep: Vec<&Path> = [current.as_deref(), previous.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        prune(&builds, &keep)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
        let dir = builds.join(format!("{BUILD_PREFIX}{stamp}"));
        fs::create_dir(&dir).map_err(io_error(&dir, "create"))?;
        Ok(Build {
            dir,
            current,
            written: BTreeSet::new(),
            counts: FileCounts::default(),
            target: Target::Live {
                link: link.to_path_buf(),
                builds,
                _lock: lock,
            },
        })
    }

    /// Starts a build written straight into `dir` (a preview): `dir` must be new, empty, or
    /// a preview written before, and outside every published site in `keep_out` (the sites'
    /// `output_dir`) and their builds.
    pub fn preview(dir: &Path, keep_out: &[PathBuf]) -> Result<Build, PublishError> {
        let at = crate::config::resolved_path(dir);
        for link in keep_out {
            let builds = crate::config::resolved_path(&builds_dir(link));
            let live = crate::config::resolved_path(link);
            // The live build the link points at, through the link.
            let current = fs::canonicalize(link).ok();
            let forbidden = [Some(live), Some(builds), current];
            for place in forbidden.iter().flatten() {
                if at.starts_with(place) || place.starts_with(&at) {
                    return Err(PublishError::OutputDir {
                        path: dir.to_path_buf(),
                        message: format!(
                            "is inside (or holds) the published site {}; a preview goes in a directory of its own",
                            link.display()
                        ),
                    });
                }
            }
        }
        if dir.exists() {
            let entries: Vec<PathBuf> = fs::read_dir(dir)
                .map_err(io_error(dir, "read"))?
                .flatten()
                .map(|e| e.path())
                .collect();
            if !entries.is_empty() && !dir.join(PREVIEW_MARK).exists() {
                return Err(PublishError::OutputDir {
                    path: dir.to_path_buf(),
                    message: "is not empty and was not written by `tthc-sync publish --preview`; choose a new directory".into(),
                });
            }
            // Emptied, not replaced: the directory keeps its owner and permissions.
            for entry in entries {
                let removed = if entry.is_dir() && !entry.is_symlink() {
                    fs::remove_dir_all(&entry)
                } else {
                    fs::remove_file(&entry)
                };
                removed.map_err(io_error(&entry, "clear"))?;
            }
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

    /// The build being replaced, when there is one.
    pub fn current(&self) -> Option<&Path> {
        self.current.as_deref()
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
    /// current build stays), keeps the one it replaced for rollback, removes the others.
    pub fn finish(mut self) -> Result<FileCounts, PublishError> {
        self.counts.removed = self.removed();
        let Target::Live { link, builds, .. } = &self.target else {
            return Ok(self.counts.clone());
        };
        if self.current.is_some() && self.counts.written == 0 && self.counts.removed == 0 {
            fs::remove_dir_all(&self.dir).map_err(io_error(&self.dir, "remove"))?;
            return Ok(self.counts.clone());
        }
        // `previous` first: a crash between the two leaves it naming the current build, which
        // a rollback refuses, never a build two steps back.
        let switched = set_previous(builds, self.current.as_deref())
            .and_then(|()| switch_link(link, &self.dir));
        if let Err(error) = switched {
            let _ = fs::remove_dir_all(&self.dir);
            return Err(error);
        }
        let keep: Vec<&Path> = [Some(self.dir.as_path()), self.current.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        prune(builds, &keep)?;
        Ok(self.counts.clone())
    }

    /// Gives up the build (a failed or held publish): the site stays as it was.
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
    if let Err(e) = fs::rename(&temporary, link) {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(link, "switch the link")(e));
    }
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

/// Removes every build in `builds` but those in `keep`.
fn prune(builds: &Path, keep: &[&Path]) -> Result<(), PublishError> {
    let entries = fs::read_dir(builds).map_err(io_error(builds, "read"))?;
    for build in entries.flatten().map(|e| e.path()) {
        let is_build = build.is_dir()
            && build
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(BUILD_PREFIX));
        if is_build && !keep.contains(&build.as_path()) {
            fs::remove_dir_all(&build).map_err(io_error(&build, "remove"))?;
        }
    }
    Ok(())
}

/// Switches `link` back to the build published before the current one; returns it. Once
/// rolled back, there is nothing older to roll back to until the next publish.
pub fn rollback(link: &Path) -> Result<PathBuf, PublishError> {
    let builds = builds_dir(link);
    if !builds.is_dir() {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "nothing has been published there yet".into(),
        });
    }
    // What the operator saw when asking: a publish finishing meanwhile is not rolled back
    // unseen.
    let seen = current_build(link, &builds)?;
    let _lock = lock(&builds)?;
    let now = current_build(link, &builds)?;
    if now != seen {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "a publish finished while the rollback waited for it, so the site changed; look at it, then roll back again if it should go".into(),
        });
    }
    let Some(current) = now else {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "nothing has been published there yet".into(),
        });
    };
    let Some(previous) = previous_build(&builds).filter(|p| *p != current) else {
        return Err(PublishError::NothingToRollBack {
            path: link.to_path_buf(),
            why: "no earlier build is kept (only one build was published, or the site was rolled back already)".into(),
        });
    };
    switch_link(link, &previous)?;
    set_previous(&builds, None)?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    fn builds(link: &Path) -> usize {
        fs::read_dir(builds_dir(link))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(BUILD_PREFIX))
            .count()
    }

    #[test]
    fn unchanged_files_keep_their_time_and_rollback_restores_the_previous_build_once() {
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
        assert_eq!(builds(&link), 2);

        rollback(&link).unwrap();
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");
        // A second rollback does not bring back what was rolled away from.
        let err = rollback(&link).unwrap_err();
        assert!(err.to_string().contains("no earlier build"), "{err}");
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");

        // The next publish drops the build rolled away from; a page gone counts as removed.
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"three").unwrap();
        let counts = build.finish().unwrap();
        assert_eq!(counts.removed, 1);
        assert!(!link.join("thu-tuc/1.001193.html").exists());
        assert_eq!(builds(&link), 2);
        rollback(&link).unwrap();
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");
    }

    #[test]
    fn a_build_a_crashed_publish_left_is_never_rolled_back_to() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"one").unwrap();
        build.finish().unwrap();
        // A publish killed half-way: its build stays behind, unfinished (and newest).
        let crashed = builds_dir(&link).join("build-29991231T000000.000000Z");
        fs::create_dir_all(crashed.join("thu-tuc")).unwrap();
        fs::write(crashed.join("thu-tuc/x.html"), b"half").unwrap();
        let err = rollback(&link).unwrap_err();
        assert!(err.to_string().contains("no earlier build"), "{err}");
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"two").unwrap();
        build.finish().unwrap();
        assert_eq!(builds(&link), 2, "the half-written build is gone");
        rollback(&link).unwrap();
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"one");
    }

    #[test]
    fn what_tthc_sync_did_not_make_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        fs::create_dir(&link).unwrap();
        fs::write(link.join("index.html"), b"hand-made").unwrap();
        let err = Build::live(&link).err().unwrap();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert_eq!(fs::read(link.join("index.html")).unwrap(), b"hand-made");
        let err = Build::preview(&link, &[dir.path().join("other")])
            .err()
            .unwrap();
        assert!(err.to_string().contains("not empty"), "{err}");
        // A link to the operator's own directory, or a dangling one.
        let www = dir.path().join("www");
        fs::create_dir(&www).unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&www, &linked).unwrap();
        let err = Build::live(&linked).err().unwrap();
        assert!(
            err.to_string().contains("not to a build of its own"),
            "{err}"
        );
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("dangling"))
            .unwrap();
        assert!(Build::live(&dir.path().join("dangling")).is_err());
    }

    #[test]
    fn a_preview_stays_out_of_the_live_site() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        let mut build = Build::live(&link).unwrap();
        build.write("index.html", b"one").unwrap();
        build.finish().unwrap();
        for inside in [
            link.join("preview"),
            builds_dir(&link),
            builds_dir(&link).join("build-zzz"),
            link.clone(),
        ] {
            let err = Build::preview(&inside, std::slice::from_ref(&link))
                .err()
                .unwrap();
            assert!(err.to_string().contains("published site"), "{err}");
        }
        // Nor inside another site's.
        let other = dir.path().join("other-site");
        let mut build = Build::live(&other).unwrap();
        build.write("index.html", b"other").unwrap();
        build.finish().unwrap();
        let both = [link.clone(), other.clone()];
        for inside in [other.join("evil"), builds_dir(&other).join("build-zz")] {
            assert!(Build::preview(&inside, &both).is_err(), "{inside:?}");
        }
        let elsewhere = dir.path().join("p");
        Build::preview(&elsewhere, &both).unwrap().finish().unwrap();
        assert_eq!(fs::read(other.join("index.html")).unwrap(), b"other");
    }

    #[test]
    fn paths_cannot_leave_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut build = Build::preview(&dir.path().join("p"), &[dir.path().join("site")]).unwrap();
        for bad in ["../x.html", "/etc/passwd", "a/../../b", "", "a\\..\\b"] {
            assert!(
                matches!(build.write(bad, b"x"), Err(PublishError::UnsafePath(_))),
                "{bad}"
            );
        }
        build.write("thu-tuc/a.html", b"x").unwrap();
    }
}
