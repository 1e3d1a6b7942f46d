//! The web adapter: each event is POSTed to a local HTTP server (started once at init by
//! an optional command, see `server.rs`), and the reply's body is the response.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tinylambda::endpoint::Endpoint;
use tinylambda::{Context, Error, Level};

use crate::deadline::Deadline;
use crate::failure::{
    self, CONFIG_INVALID, HTTP_STATUS, START_ERROR, START_TIMEOUT, TIMEOUT, WEB_UNAVAILABLE,
};
use crate::http::{Client, Failure};
use crate::log::{decimal, log};
use crate::server::Server;
use crate::server_log::ServerLog;
use crate::settings::WebSettings;
use crate::vars;

/// The web adapter.
pub(crate) struct Web {
    /// `TINYLAMBDA_WEB_URL`, for messages.
    url: String,
    /// The request target (`/` when the URL has no path).
    path: String,
    /// The `Host` header.
    authority: String,
    addr: SocketAddr,
    client: Client,
    /// The server we started, if any.
    server: Option<Server>,
    /// Its output, relayed in JSON log format.
    log: ServerLog,
    /// Where it runs: `LAMBDA_TASK_ROOT`.
    dir: PathBuf,
    wait_ms: u64,
    head: Vec<u8>,
}

impl Web {
    /// Parses the URL, starts the server if there is a command (in `dir`,
    /// `LAMBDA_TASK_ROOT`), and waits (bounded) until its port accepts a connection, which
    /// is kept for the first invocation.
    ///
    /// # Errors
    /// `Runtime.ConfigInvalid` for a URL that is not `http://host[:port][/path]` or a host
    /// that does not resolve; `Runtime.StartError` when the command cannot start or exits
    /// before the port is ready; `Runtime.StartTimeout` when the port is not ready within
    /// `TINYLAMBDA_WEB_WAIT_MS`. The server is killed in either case.
    pub(crate) fn start(settings: WebSettings, dir: &Path) -> Result<Web, Error> {
        let endpoint = Endpoint::parse(&settings.url).map_err(|e| {
            failure::error(
                CONFIG_INVALID,
                &[
                    b"TINYLAMBDA_WEB_URL=",
                    settings.url.as_bytes(),
                    b" ",
                    e.as_str().as_bytes(),
                ],
            )
        })?;
        let addr = (endpoint.host, endpoint.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                failure::error(
                    CONFIG_INVALID,
                    &[
                        b"TINYLAMBDA_WEB_URL=",
                        settings.url.as_bytes(),
                        b": cannot resolve ",
                        endpoint.host.as_bytes(),
                    ],
                )
            })?;
        let path = if endpoint.prefix.is_empty() {
            "/"
        } else {
            endpoint.prefix
        };
        let mut web = Web {
            path: path.to_owned(),
            authority: endpoint.authority.to_owned(),
            url: settings.url.clone(),
            addr,
            client: Client::new(addr, None),
            server: None,
            log: ServerLog::new(),
            dir: dir.to_owned(),
            wait_ms: settings.wait_ms,
            head: Vec::new(),
        };
        if let Some(command) = settings.start {
            web.server = Some(Server::start(&command, dir, &mut web.log)?);
        }
        let stream = web.await_port(Deadline::after_ms(web.wait_ms))?;
        web.client = Client::new(addr, Some(stream));
        Ok(web)
    }

    /// Connects as soon as the port accepts, until `within`; the server's death or the
    /// time running out is an error (and the server is killed).
    fn await_port(&mut self, within: Deadline) -> Result<TcpStream, Error> {
        let mut pause = 1;
        loop {
            if let Ok(stream) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)) {
                return Ok(stream);
            }
            if let Some(server) = &mut self.server {
                if let Some(status) = server.ended() {
                    let error = failure::error(
                        START_ERROR,
                        &[
                            b"TINYLAMBDA_WEB_START (",
                            server.command.as_bytes(),
                            b") ended (",
                            &failure::status_text(Some(status)),
                            b") before ",
                            self.url.as_bytes(),
                            b" accepted connections",
                        ],
                    );
                    // Whatever it started in its group goes with it.
                    self.stop_server();
                    return Err(error);
                }
            }
            if within.passed() {
                self.stop_server();
                return Err(failure::error(
                    START_TIMEOUT,
                    &[
                        self.url.as_bytes(),
                        b" did not accept connections within ",
                        &decimal(self.wait_ms),
                        b" ms",
                    ],
                ));
            }
            std::thread::sleep(
                Duration::from_millis(pause).min(within.left().unwrap_or(Duration::ZERO)),
            );
            pause = (pause * 2).min(20);
        }
    }

    fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Runs one invocation.
    pub(crate) fn invoke(&mut self, event: &[u8], ctx: &Context<'_>) -> Result<Vec<u8>, Error> {
        let deadline = Deadline::of(ctx);
        self.restart_if_ended(deadline)?;
        // What the server logged before this invocation is not this invocation's.
        self.log.drain();
        self.log.begin(ctx);
        self.write_head(event.len(), ctx);
        let sent = self.client.send(&self.head, event, deadline);
        // What the server logged before it answered belongs to this invocation.
        self.log.drain();
        let reply = match sent {
            Ok(reply) => reply,
            Err(Failure::Timeout) => {
                return Err(failure::error(
                    TIMEOUT,
                    &[self.url.as_bytes(), b": no reply before the deadline"],
                ));
            }
            Err(Failure::TooLarge(size)) => {
                return Err(failure::too_large(size));
            }
            Err(other) => {
                return Err(failure::error(
                    WEB_UNAVAILABLE,
                    &[b"POST ", self.url.as_bytes(), b": ", &other.describe()],
                ));
            }
        };
        let body = self.client.body(&reply);
        if (200..300).contains(&reply.status) {
            return Ok(body.to_vec());
        }
        Err(failure::error(
            HTTP_STATUS,
            &[
                self.url.as_bytes(),
                b" answered ",
                &decimal(u64::from(reply.status)),
                b": ",
                body,
            ],
        ))
    }

    /// If the server we started has ended, starts it again and waits for its port (within
    /// the wait and the invocation's deadline).
    fn restart_if_ended(&mut self, deadline: Deadline) -> Result<(), Error> {
        let Some(server) = &mut self.server else {
            return Ok(());
        };
        let Some(status) = server.ended() else {
            return Ok(());
        };
        log(
            Level::Warn,
            &[
                b"the web server ended (",
                &failure::status_text(Some(status)),
                b"); starting it again",
            ],
        );
        let command = server.command.clone();
        // What it left running in its group goes first (it may hold the port).
        self.stop_server();
        self.server = Some(Server::start(&command, &self.dir, &mut self.log)?);
        let stream = self.await_port(Deadline::after_ms(self.wait_ms).min(deadline))?;
        self.client = Client::new(self.addr, Some(stream));
        Ok(())
    }

    /// The request head: the event's `Content-Type` (JSON by default), its length, and the
    /// invocation's `Lambda-Runtime-*` headers as Lambda sent them.
    fn write_head(&mut self, len: usize, ctx: &Context<'_>) {
        let head = &mut self.head;
        head.clear();
        for part in [
            b"POST ".as_slice(),
            self.path.as_bytes(),
            b" HTTP/1.1\r\nHost: ",
            self.authority.as_bytes(),
            b"\r\nContent-Type: ",
            ctx.content_type().unwrap_or("application/json").as_bytes(),
            b"\r\nContent-Length: ",
            tinylambda::request::decimal(len as u64, &mut [0; 20]),
            b"\r\n",
        ] {
            head.extend_from_slice(part);
        }
        vars::each(ctx, |i, value| {
            if let (Some(name), Some(value)) = (vars::HEADERS.get(i), value) {
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value);
                head.extend_from_slice(b"\r\n");
            }
        });
        head.extend_from_slice(b"\r\n");
    }
}
