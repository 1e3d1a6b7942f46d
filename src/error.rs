//! The error a handler returns, reported to Lambda as `{"errorMessage","errorType"}`.

use alloc::borrow::{Cow, ToOwned};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;

/// The `errorType` of errors made with `From` (from a `&str`, a `String`, a boxed error or a
/// std error): `Function.Error`.
///
/// It has the `Category.Reason` form Lambda recommends, so emulators that normalise error
/// types (the AWS emulator maps anything else to `Runtime.Unknown`) pass it through.
pub const DEFAULT_ERROR_TYPE: &str = "Function.Error";

/// A handler failure: an error type (`errorType`) and a message (`errorMessage`).
///
/// Returning it from a handler makes the runtime POST `/error` with the Lambda error
/// document; the caller sees `errorType` and `errorMessage`. Costs one `String` for the
/// message (and one for the type, unless it is the default).
///
/// A handler can use `?` on a `&str`, a `String`, `Box<dyn core::error::Error>` and the
/// common errors of `core` and `alloc` (parsing, UTF-8, formatting) and, with the `std`
/// feature, of std (I/O, environment, time); each becomes a [`DEFAULT_ERROR_TYPE`] error
/// with the source's message (formatted with `core::fmt`, which links it). For other error types, either return
/// `Result<Vec<u8>, Box<dyn std::error::Error>>` from the handler (`run` accepts any error
/// that converts into this one) or implement `From<YourError> for tinylambda::Error`.
///
/// ```
/// use tinylambda::{Context, Error};
///
/// fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
///     let text = std::str::from_utf8(event)?; // Utf8Error → Function.Error
///     let n: u32 = text.trim().parse()?; // ParseIntError → Function.Error
///     if n == 0 {
///         return Err(Error::new("Function.ZeroNotAllowed", "n must be positive"));
///     }
///     Ok((n * 2).to_string().into_bytes())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    error_type: Cow<'static, str>,
    message: String,
}

impl Error {
    /// An error with this `errorType` (prefer Lambda's `Category.Reason` form, such as
    /// `Function.InvalidInput`) and `errorMessage`.
    pub fn new(error_type: &str, message: &str) -> Self {
        Error {
            error_type: Cow::Owned(error_type.to_owned()),
            message: message.to_owned(),
        }
    }

    /// The `errorType` reported to Lambda.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The `errorMessage` reported to Lambda.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error of a fixed type with this message, without copying either.
    pub(crate) fn of(error_type: &'static str, message: String) -> Self {
        Error {
            error_type: Cow::Borrowed(error_type),
            message,
        }
    }

    /// An error of the default type with this message, without copying it.
    fn with_default_type(message: String) -> Self {
        Error::of(DEFAULT_ERROR_TYPE, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl core::error::Error for Error {}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::with_default_type(message.to_owned())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::with_default_type(message)
    }
}

impl From<Box<dyn core::error::Error>> for Error {
    fn from(error: Box<dyn core::error::Error>) -> Self {
        Error::with_default_type(error.to_string())
    }
}

impl From<Box<dyn core::error::Error + Send + Sync>> for Error {
    fn from(error: Box<dyn core::error::Error + Send + Sync>) -> Self {
        Error::with_default_type(error.to_string())
    }
}

/// `From` for common error types, each reported with [`DEFAULT_ERROR_TYPE`] and its own
/// message.
macro_rules! from_errors {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(error: $ty) -> Self {
                Error::with_default_type(error.to_string())
            }
        }
    )*};
}

from_errors!(
    core::fmt::Error,
    core::str::Utf8Error,
    alloc::string::FromUtf8Error,
    core::num::ParseIntError,
    core::num::ParseFloatError,
    core::num::TryFromIntError,
    core::str::ParseBoolError,
    core::char::ParseCharError,
    core::net::AddrParseError,
);

#[cfg(feature = "std")]
from_errors!(
    std::io::Error,
    std::env::VarError,
    std::time::SystemTimeError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keeps_type_and_message() {
        let e = Error::new("Function.Bad", "it broke");
        assert_eq!((e.error_type(), e.message()), ("Function.Bad", "it broke"));
        assert_eq!(e.to_string(), "Function.Bad: it broke");
    }

    #[test]
    fn strings_get_the_default_type() {
        assert_eq!(Error::from("a").error_type(), DEFAULT_ERROR_TYPE);
        assert_eq!(Error::from(String::from("b")).message(), "b");
    }

    #[test]
    fn question_mark_works_on_std_and_boxed_errors() {
        fn parse(s: &str) -> Result<u8, Error> {
            Ok(s.parse::<u8>()?)
        }
        fn boxed() -> Result<(), Error> {
            let e: Box<dyn std::error::Error + Send + Sync> = "boxed".into();
            Err(e)?
        }
        assert_eq!(
            parse("300").unwrap_err().message(),
            "number too large to fit in target type"
        );
        assert_eq!(boxed().unwrap_err().message(), "boxed");
    }

    #[test]
    #[cfg(feature = "std")]
    fn question_mark_works_on_std_io_errors() {
        let io = Error::from(std::io::Error::other("disk"));
        assert_eq!(
            (io.error_type(), io.message()),
            (DEFAULT_ERROR_TYPE, "disk")
        );
    }

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 48);
    }
}
