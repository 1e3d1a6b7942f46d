//! The three ways to run the user's code, chosen once at init from the environment.

use tinylambda::{Context, Error};

use crate::check;
use crate::oneshot::PerCall;
use crate::persistent::Persistent;
use crate::resolve;
use crate::settings::Settings;
use crate::spec::Spec;
use crate::web::Web;

/// The handler for every invocation.
pub(crate) enum Handler {
    /// A child per invocation.
    PerCall(PerCall),
    /// One child for all invocations (`TINYLAMBDA_PERSISTENT=1`).
    Persistent(Persistent),
    /// A local web server (`TINYLAMBDA_WEB_URL`).
    Web(Web),
}

impl Handler {
    /// Reads the configuration, resolves `_HANDLER` and starts what runs across
    /// invocations (a persistent child, a web server).
    ///
    /// # Errors
    /// The `/init/error` to report: see `failure.rs` for the types.
    pub(crate) fn from_env() -> Result<Handler, Error> {
        let settings = Settings::from_env()?;
        if let Some(web) = settings.web {
            return Web::start(web, &settings.task_root).map(Handler::Web);
        }
        let target = resolve::target(&settings.handler, &settings.task_root)?;
        let spec = Spec::new(target, settings.persistent, &settings.bash, &settings.perl)?;
        check::compiles(&spec)?;
        if settings.persistent {
            Persistent::start(spec).map(Handler::Persistent)
        } else {
            Ok(Handler::PerCall(PerCall::new(spec)))
        }
    }

    /// Runs one invocation.
    pub(crate) fn invoke(&mut self, event: &[u8], ctx: &Context<'_>) -> Result<Vec<u8>, Error> {
        match self {
            Handler::PerCall(h) => h.invoke(event, ctx),
            Handler::Persistent(h) => h.invoke(event, ctx),
            Handler::Web(h) => h.invoke(event, ctx),
        }
    }
}
