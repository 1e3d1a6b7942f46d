//! From `_HANDLER` to the file to run, and from an interpreter's name to its path: done
//! once at init, so a mistake is reported to `/init/error` before any invocation.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tinylambda::Error;

use crate::failure::{NO_SUCH_HANDLER, START_ERROR, error};

/// What `_HANDLER` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `file.function` with `file.sh`: a bash function.
    Shell {
        /// The absolute path of the `.sh` file.
        file: PathBuf,
        /// The function to call.
        function: String,
    },
    /// `file.sub` with `file.pl`: a Perl sub.
    Perl {
        /// The absolute path of the `.pl` file.
        file: PathBuf,
        /// The sub to call (in `main` unless qualified).
        sub: String,
    },
    /// An executable file named by `_HANDLER` itself.
    Executable(PathBuf),
}

/// Resolves `handler` (the `_HANDLER` value) in `root` (`LAMBDA_TASK_ROOT`):
///
/// 1. `root/handler` is a file: it must be executable, and is run as it is;
/// 2. otherwise `handler` is `file.function`: `root/file.sh` is a bash function, else
///    `root/file.pl` a Perl sub.
///
/// # Errors
/// `Runtime.NoSuchHandler`, naming what was looked for: no such file, a file that is not
/// executable, `file.<other extension>` only, or a name Perl cannot call.
pub(crate) fn target(handler: &str, root: &Path) -> Result<Target, Error> {
    let handler = handler.trim();
    if handler.is_empty() {
        return Err(error(
            NO_SUCH_HANDLER,
            &[b"_HANDLER is not set: name a function (function.handler for function.sh) or an executable"],
        ));
    }
    let named = root.join(handler);
    if named.is_file() {
        return if is_executable(&named) {
            Ok(Target::Executable(absolute(named)))
        } else {
            Err(no_such(&[
                path_bytes(&named),
                b" is not executable (chmod +x it before zipping)",
            ]))
        };
    }
    let Some((file, function)) = handler
        .rsplit_once('.')
        .filter(|(f, n)| !f.is_empty() && !n.is_empty())
    else {
        return Err(no_such(&[b"no executable ", path_bytes(&named)]));
    };
    let base = root.join(file);
    let shell = with_extension(&base, "sh");
    if shell.is_file() {
        return Ok(Target::Shell {
            file: absolute(shell),
            function: function.to_owned(),
        });
    }
    let perl = with_extension(&base, "pl");
    if perl.is_file() {
        if !is_perl_name(function) {
            return Err(no_such(&[
                b"_HANDLER=",
                handler.as_bytes(),
                b": ",
                function.as_bytes(),
                b" is not a Perl sub name",
            ]));
        }
        return Ok(Target::Perl {
            file: absolute(perl),
            sub: function.to_owned(),
        });
    }
    if let Some(other) = other_extension(&base) {
        return Err(no_such(&[
            path_bytes(&other),
            b": unknown extension (tinylambda-exec runs file.sh and file.pl, or an executable named by _HANDLER)",
        ]));
    }
    Err(no_such(&[
        b"no ",
        path_bytes(&shell),
        b" or ",
        path_bytes(&perl),
        b", and no executable ",
        path_bytes(&named),
    ]))
}

/// Finds the interpreter `name` (a path, or a name looked up in `PATH`), set by the
/// variable `var`.
///
/// # Errors
/// `Runtime.StartError` when it is not an executable file.
pub(crate) fn program(name: &str, var: &str) -> Result<PathBuf, Error> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        if path.is_file() && is_executable(&path) {
            return Ok(absolute(path));
        }
        return Err(error(
            START_ERROR,
            &[
                name.as_bytes(),
                b" (",
                var.as_bytes(),
                b") is not an executable file",
            ],
        ));
    }
    let search = env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in env::split_paths(&search) {
        let candidate = dir.join(name);
        if candidate.is_file() && is_executable(&candidate) {
            return Ok(absolute(candidate));
        }
    }
    Err(error(
        START_ERROR,
        &[
            name.as_bytes(),
            b" is not in PATH: add it (a layer's /opt/bin is in PATH) or set ",
            var.as_bytes(),
            b" to its path",
        ],
    ))
}

fn no_such(parts: &[&[u8]]) -> Error {
    error(NO_SUCH_HANDLER, parts)
}

fn path_bytes(path: &Path) -> &[u8] {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

fn with_extension(base: &Path, extension: &str) -> PathBuf {
    let mut name = OsString::from(base.as_os_str());
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// A file `base.<something>` next to `base`, the first by name.
fn other_extension(base: &Path) -> Option<PathBuf> {
    let dir = base
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut prefix = base.file_name()?.to_os_string();
    prefix.push(".");
    let prefix = std::os::unix::ffi::OsStrExt::as_bytes(prefix.as_os_str()).to_vec();
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .filter(|name| {
            std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).starts_with(&prefix)
        })
        .min()
        .map(|name| dir.join(name))
}

/// `name` or `Package::name`, each part an identifier.
fn is_perl_name(name: &str) -> bool {
    name.split("::").all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, files: &[(&str, u32)]) -> PathBuf {
        let dir = env::temp_dir().join(format!(
            "tinylambda-exec-resolve-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (file, mode) in files {
            let path = dir.join(file);
            fs::write(&path, "").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    #[test]
    fn each_kind_of_handler_is_found() {
        let root = dir(
            "kinds",
            &[("function.sh", 0o644), ("script.pl", 0o644), ("run", 0o755)],
        );
        assert_eq!(
            target("function.handler", &root),
            Ok(Target::Shell {
                file: root.join("function.sh"),
                function: "handler".into()
            })
        );
        assert_eq!(
            target("script.My::handler", &root),
            Ok(Target::Perl {
                file: root.join("script.pl"),
                sub: "My::handler".into()
            })
        );
        assert_eq!(
            target("run", &root),
            Ok(Target::Executable(root.join("run")))
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_files_and_unknown_extensions_are_no_such_handler() {
        let root = dir(
            "missing",
            &[("app.py", 0o644), ("plain", 0o644), ("bad.pl", 0o644)],
        );
        let cases = [
            ("", "_HANDLER is not set"),
            ("function.handler", "no "),
            ("app.handler", "app.py: unknown extension"),
            ("plain", "plain is not executable"),
            ("bad.1x", "not a Perl sub name"),
        ];
        for (handler, expected) in cases {
            let e = target(handler, &root).unwrap_err();
            assert_eq!(e.error_type(), NO_SUCH_HANDLER);
            assert!(e.message().contains(expected), "{handler}: {}", e.message());
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn interpreters_are_found_in_path_or_refused() {
        assert!(program("sh", "TINYLAMBDA_BASH").unwrap().is_absolute());
        let e = program("no-such-interpreter-here", "TINYLAMBDA_PERL").unwrap_err();
        assert_eq!(e.error_type(), START_ERROR);
        assert!(e.message().contains("TINYLAMBDA_PERL"), "{}", e.message());
        assert!(program("/nonexistent/perl", "TINYLAMBDA_PERL").is_err());
    }
}
