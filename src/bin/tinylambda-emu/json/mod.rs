//! The JSON the emulator writes and reads, std only: [`mod@write`] (escaped strings, error
//! documents), [`read`] (a strict RFC 8259 reader), [`mod@base64`]; and on top of them the
//! few questions the emulator asks of a document: its `errorType`, whether it is an
//! object, the string list of one of its members.

pub mod base64;
pub mod read;
pub mod write;

pub use base64::{base64, from_base64};
pub use read::{Value, members, validate};
pub use write::{error_document, push_key, push_string};

/// The value of the top-level member `"errorType"` of a JSON error document, if the
/// document is JSON and that member is a string.
pub fn error_type_of(document: &[u8]) -> Option<String> {
    member(document, "errorType")?.as_str().map(str::to_owned)
}

/// Whether `text` is one JSON object, whitespace around it allowed: what Lambda accepts as
/// a client context.
pub fn is_object(text: &[u8]) -> bool {
    matches!(members(text), Ok(Some(_)))
}

/// The value of the top-level member `name` of the JSON object `document` (the last one
/// when the name repeats), if it is an object that has it and the value is nested at most
/// [`read::MAX_DEPTH`] deep.
pub fn member(document: &[u8], name: &str) -> Option<Value> {
    let members = members(document).ok()??;
    let (_, range) = members.iter().rev().find(|(n, _)| n == name)?;
    Value::parse(&document[range.clone()]).ok()
}

/// The strings of the array member `key` of a JSON object (an extension's
/// `{"events":["INVOKE","SHUTDOWN"]}`). `Ok(None)` when the key is absent; `Err` when the
/// document is not a JSON object or the member is not an array of strings.
pub fn string_array(document: &[u8], key: &str) -> Result<Option<Vec<String>>, &'static str> {
    let members = match members(document) {
        Ok(Some(members)) => members,
        Ok(None) | Err(_) => return Err("the body is not a JSON object"),
    };
    let Some((_, range)) = members.iter().rev().find(|(n, _)| n == key) else {
        return Ok(None);
    };
    match Value::parse(&document[range.clone()]) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err("an item is not a string"),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err("the value is not an array"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_is_found_in_documents() {
        assert_eq!(
            error_type_of(br#"{"errorMessage":"x","errorType" : "Runtime.ExitError"}"#).as_deref(),
            Some("Runtime.ExitError")
        );
        assert_eq!(
            error_type_of(br#"{"errorType":"A\"B","nested":{"errorType":"no"}}"#).as_deref(),
            Some("A\"B")
        );
        assert_eq!(error_type_of(b"not json"), None);
        assert_eq!(error_type_of(br#"{"errorType":1}"#), None);
    }

    #[test]
    fn only_json_objects_are_objects() {
        for object in [
            &b"{}"[..],
            b" {\r\n} \n",
            br#"{"custom":{"k":"v"},"env":{"a":[1,-2.5e3,true,false,null,"\u00e9\n"]}}"#,
            br#"{"a":0,"b":-0.0,"c":1E+2}"#,
        ] {
            assert!(is_object(object), "{}", String::from_utf8_lossy(object));
        }
        for not in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"1",
            b"{}\r\nLambda-Runtime-Aws-Request-Id: injected",
            b"{} {}",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":01}",
            b"{\"a\":1,}",
            b"{a:1}",
            b"{\"a\":\"raw\nline\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":tru}",
        ] {
            assert!(!is_object(not), "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn event_lists_are_read_from_registrations() {
        assert_eq!(
            string_array(br#"{"events": ["INVOKE" , "SHUTDOWN"]}"#, "events"),
            Ok(Some(vec!["INVOKE".into(), "SHUTDOWN".into()]))
        );
        assert_eq!(
            string_array(br#"{"events":[]}"#, "events"),
            Ok(Some(vec![]))
        );
        assert_eq!(
            string_array(br#"{"events":["INV\u004fKE"]}"#, "events"),
            Ok(Some(vec!["INVOKE".into()])),
            "escapes are decoded"
        );
        assert_eq!(string_array(b"{}", "events"), Ok(None));
        assert!(string_array(b"events", "events").is_err());
        assert!(string_array(br#"{"events":"INVOKE"}"#, "events").is_err());
        assert!(string_array(br#"{"events":["A" "B"]}"#, "events").is_err());
        assert!(string_array(br#"{"events":[1]}"#, "events").is_err());
    }
}
