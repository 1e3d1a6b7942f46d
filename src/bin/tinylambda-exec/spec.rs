//! How to start a handler: the program, its arguments, and how its output becomes the
//! response.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

use tinylambda::Error;

use crate::child::Child;
use crate::failure::{START_ERROR, error};
use crate::resolve::{self, Target};
use crate::scripts;

/// A handler ready to be started.
pub(crate) struct Spec {
    /// The absolute path of the program.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// Whether the event is also passed as one more argument when it fits (a shell
    /// function's `$1`, per call).
    pub(crate) event_arg: bool,
    /// Whether trailing newlines are removed from the response: for `.sh` and `.pl`
    /// handlers, as the `$(...)` of the classic bootstraps did; never for executables,
    /// whose stdout is the response byte for byte.
    pub(crate) trim: bool,
    /// For a `.sh` or `.pl` file: the interpreter's options that only compile a file
    /// (`-O extglob -n`, `-c`), and the file.
    check: Option<(&'static [&'static str], PathBuf)>,
}

impl Spec {
    /// The spec for `target`, per call or persistent, with the interpreters `bash` and
    /// `perl` (names or paths).
    ///
    /// # Errors
    /// `Runtime.StartError` when the interpreter it needs is not found.
    pub(crate) fn new(
        target: Target,
        persistent: bool,
        bash: &str,
        perl: &str,
    ) -> Result<Spec, Error> {
        let (program, mut args, file, name, event_arg, only_compile) = match target {
            Target::Executable(path) => {
                return Ok(Spec {
                    program: path,
                    args: Vec::new(),
                    event_arg: false,
                    trim: false,
                    check: None,
                });
            }
            Target::Shell { file, function } => {
                let script = if persistent {
                    scripts::SHELL_LOOP
                } else {
                    scripts::SHELL_ONCE
                };
                // bash -c SCRIPT NAME ARGS: NAME is $0, the prefix of bash's own messages.
                let args = vec!["-c".into(), script.into(), "tinylambda-exec".into()];
                (
                    resolve::program(bash, "TINYLAMBDA_BASH")?,
                    args,
                    file,
                    function,
                    !persistent,
                    // With extended patterns on: `bash -n` does not run the file's
                    // `shopt -s extglob`, so without it a file that turns them on before
                    // using them would be refused, though it runs.
                    &["-O", "extglob", "-n"][..],
                )
            }
            Target::Perl { file, sub } => {
                let script = if persistent {
                    scripts::PERL_LOOP
                } else {
                    scripts::PERL_ONCE
                };
                let args = vec!["-e".into(), script.into()];
                (
                    resolve::program(perl, "TINYLAMBDA_PERL")?,
                    args,
                    file,
                    sub,
                    false,
                    &["-c"][..],
                )
            }
        };
        args.push(file.clone().into_os_string());
        args.push(name.into());
        Ok(Spec {
            program,
            args,
            event_arg,
            trim: true,
            check: Some((only_compile, file)),
        })
    }

    /// A command for one start of the handler.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }

    /// The command that checks the handler's file compiles (`bash -O extglob -n FILE`,
    /// `perl -c FILE`), and the file; `None` for an executable.
    pub(crate) fn check_command(&self) -> Option<(Command, &PathBuf)> {
        let (options, file) = self.check.as_ref()?;
        let mut cmd = Command::new(&self.program);
        cmd.args(options.iter()).arg(file);
        Some((cmd, file))
    }

    /// Starts `cmd` (made by [`Spec::command`]) with piped streams.
    ///
    /// # Errors
    /// `Runtime.StartError`, naming the program and the system's reason.
    pub(crate) fn spawn(&self, cmd: &mut Command) -> Result<Child, Error> {
        Child::spawn(cmd).map_err(|e| {
            error(
                START_ERROR,
                &[
                    self.program.as_os_str().as_bytes(),
                    b": ",
                    e.to_string().as_bytes(),
                ],
            )
        })
    }
}
