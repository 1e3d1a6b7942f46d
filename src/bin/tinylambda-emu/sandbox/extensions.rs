//! The extensions of one runtime generation: who registered, for which events, and the
//! events waiting for each.
//!
//! Extensions register during Init only (after the runtime's first `/next`: 403
//! `Extension.RegistrationClosed`), at most 10, for no events, `INVOKE` or `SHUTDOWN`
//! (Lambda's Extensions API, `runtimes-extensions-api.md`). The emulator starts no
//! extensions of its own (there is no `/opt/extensions`), so every extension is one the
//! bootstrap started: one that subscribes to `SHUTDOWN` is treated as an external
//! extension (Lambda refuses `SHUTDOWN` to internal ones), one that subscribes to nothing
//! as an internal one that only parks on `/event/next`. `INVOKE` events are queued for
//! their subscribers; an invocation does not wait for extensions to call `/event/next`
//! again before the runtime gets the next one.

use std::collections::VecDeque;
use std::time::Duration;

/// Lambda's limit on registered extensions.
const MAX_EXTENSIONS: usize = 10;

/// The Shutdown phase when only internal extensions are registered: the runtime's 500 ms.
pub const SHUTDOWN_INTERNAL: Duration = Duration::from_millis(500);

/// The Shutdown phase with an extension subscribed to `SHUTDOWN` (an external one): 2 s.
pub const SHUTDOWN_EXTERNAL: Duration = Duration::from_millis(2000);

/// A refused Extensions API request: status line, `errorType` and message.
#[derive(Debug, PartialEq, Eq)]
pub struct ExtensionRefusal {
    /// The status line, e.g. `403 Forbidden`.
    pub status: &'static str,
    /// The error document's `errorType`.
    pub error_type: &'static str,
    /// The error document's `errorMessage`.
    pub message: String,
}

/// 403 with `error_type` and `message`.
pub fn forbidden(error_type: &'static str, message: impl Into<String>) -> ExtensionRefusal {
    ExtensionRefusal {
        status: "403 Forbidden",
        error_type,
        message: message.into(),
    }
}

/// A registered extension.
#[derive(Debug)]
struct Extension {
    id: String,
    name: String,
    invoke: bool,
    shutdown: bool,
    events: VecDeque<Vec<u8>>,
    /// It has been sent `SHUTDOWN`…
    shutdown_sent: bool,
    /// …and has asked for its next event since (it is done).
    shutdown_done: bool,
}

/// The extensions of the current generation.
#[derive(Debug, Default)]
pub struct Extensions {
    list: Vec<Extension>,
}

impl Extensions {
    /// Registers the extension `name` with the registration `body` under the identifier
    /// `id`, if registration is `open`; returns the events it subscribed to.
    pub fn register(
        &mut self,
        name: Option<&[u8]>,
        body: &[u8],
        open: bool,
        id: String,
    ) -> Result<Vec<String>, ExtensionRefusal> {
        let name = match name.map(std::str::from_utf8) {
            Some(Ok(name)) if !name.is_empty() => name.to_owned(),
            _ => {
                return Err(forbidden(
                    "Extension.InvalidExtensionName",
                    "Empty extension name",
                ));
            }
        };
        let events = match crate::json::string_array(body, "events") {
            Ok(events) => events.unwrap_or_default(),
            Err(why) => return Err(forbidden("InvalidRequestFormat", why)),
        };
        if let Some(unknown) = events
            .iter()
            .find(|e| !matches!(e.as_str(), "INVOKE" | "SHUTDOWN"))
        {
            return Err(forbidden(
                "Extension.InvalidEventType",
                format!("{unknown}: unknown event type (INVOKE or SHUTDOWN)"),
            ));
        }
        if !open {
            return Err(forbidden(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            ));
        }
        if self.list.iter().any(|e| e.name == name) {
            return Err(forbidden(
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            ));
        }
        if self.list.len() >= MAX_EXTENSIONS {
            return Err(forbidden(
                "Extension.TooManyExtensions",
                format!("Extension limit ({MAX_EXTENSIONS}) reached"),
            ));
        }
        self.list.push(Extension {
            id,
            name,
            invoke: events.iter().any(|e| e == "INVOKE"),
            shutdown: events.iter().any(|e| e == "SHUTDOWN"),
            events: VecDeque::new(),
            shutdown_sent: false,
            shutdown_done: false,
        });
        Ok(events)
    }

    /// The next event of the extension `id`, if one waits. `asking` is true on the first
    /// look of a `/event/next` request: asking again once it has taken `SHUTDOWN` is how
    /// an extension says it is done.
    pub fn next_event(
        &mut self,
        id: &[u8],
        asking: bool,
    ) -> Result<Option<Vec<u8>>, ExtensionRefusal> {
        let Some(extension) = self.list.iter_mut().find(|e| e.id.as_bytes() == id) else {
            return Err(forbidden(
                "Extension.UnknownExtensionIdentifier",
                "Unknown extension identifier",
            ));
        };
        if asking && extension.shutdown_sent && extension.events.is_empty() {
            extension.shutdown_done = true;
        }
        Ok(extension.events.pop_front())
    }

    /// Whether an extension subscribed to `INVOKE`.
    pub fn wants_invoke(&self) -> bool {
        self.list.iter().any(|e| e.invoke)
    }

    /// Queues `event` for every `INVOKE` subscriber.
    pub fn invoke(&mut self, event: &[u8]) {
        for extension in self.list.iter_mut().filter(|e| e.invoke) {
            extension.events.push_back(event.to_vec());
        }
    }

    /// The Shutdown phase's budget: 2 s with a `SHUTDOWN` subscriber, else 500 ms.
    pub fn shutdown_budget(&self) -> Duration {
        if self.list.iter().any(|e| e.shutdown) {
            SHUTDOWN_EXTERNAL
        } else {
            SHUTDOWN_INTERNAL
        }
    }

    /// Queues `event` (`SHUTDOWN`) for every `SHUTDOWN` subscriber.
    pub fn shutdown(&mut self, event: &[u8]) {
        for extension in self.list.iter_mut().filter(|e| e.shutdown) {
            extension.events.push_back(event.to_vec());
            extension.shutdown_sent = true;
        }
    }

    /// Whether every `SHUTDOWN` subscriber has asked for its next event since.
    pub fn shutdown_done(&self) -> bool {
        self.list
            .iter()
            .filter(|e| e.shutdown)
            .all(|e| e.shutdown_done)
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Forgets them all (the generation ended).
    pub fn clear(&mut self) {
        self.list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_follows_lambdas_rules() {
        let mut x = Extensions::default();
        let body = br#"{"events":["INVOKE","SHUTDOWN"]}"#;
        assert_eq!(
            x.register(Some(b"a"), body, true, "id-a".into()),
            Ok(vec!["INVOKE".to_owned(), "SHUTDOWN".to_owned()])
        );
        let refused = |r: Result<Vec<String>, ExtensionRefusal>| r.unwrap_err().error_type;
        assert_eq!(
            refused(x.register(Some(b"a"), b"{}", true, "id".into())),
            "Extension.InvalidExtensionState"
        );
        assert_eq!(
            refused(x.register(Some(b"b"), br#"{"events":["LOGS"]}"#, true, "id".into())),
            "Extension.InvalidEventType"
        );
        assert_eq!(
            refused(x.register(None, b"{}", true, "id".into())),
            "Extension.InvalidExtensionName"
        );
        assert_eq!(
            refused(x.register(Some(b"c"), b"{}", false, "id".into())),
            "Extension.RegistrationClosed"
        );
        for i in 1..MAX_EXTENSIONS {
            let name = format!("n{i}");
            assert!(
                x.register(Some(name.as_bytes()), b"{}", true, name.clone())
                    .is_ok()
            );
        }
        assert_eq!(
            refused(x.register(Some(b"z"), b"{}", true, "z".into())),
            "Extension.TooManyExtensions"
        );
        assert_eq!(x.shutdown_budget(), SHUTDOWN_EXTERNAL);
    }

    #[test]
    fn events_reach_their_subscribers_and_asking_again_ends_the_shutdown() {
        let mut x = Extensions::default();
        x.register(Some(b"i"), br#"{"events":["INVOKE"]}"#, true, "i".into())
            .unwrap();
        x.register(Some(b"s"), br#"{"events":["SHUTDOWN"]}"#, true, "s".into())
            .unwrap();
        assert!(x.wants_invoke());
        x.invoke(b"invoke");
        assert_eq!(x.next_event(b"i", true), Ok(Some(b"invoke".to_vec())));
        assert_eq!(x.next_event(b"s", true), Ok(None));
        x.shutdown(b"shutdown");
        assert!(!x.shutdown_done());
        assert_eq!(x.next_event(b"s", true), Ok(Some(b"shutdown".to_vec())));
        assert!(!x.shutdown_done(), "taking the event is not being done");
        assert_eq!(x.next_event(b"s", true), Ok(None));
        assert!(x.shutdown_done());
        assert!(x.next_event(b"unknown", true).is_err());
    }
}
