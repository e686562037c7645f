//! Logging in: LOGIN, AUTHENTICATE PLAIN, and the login throttle.

use super::*;

impl<B: Backend> Session<B> {
    /// AUTHENTICATE PLAIN (RFC 4616), with SASL-IR. None: the connection ended
    /// while waiting for the client's response.
    pub(super) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        tag: &str,
        mechanism: &AuthMechanism<'_>,
        initial_response: Option<Vec<u8>>,
    ) -> std::io::Result<Option<Result<Next, Reply>>> {
        if !matches!(mechanism, AuthMechanism::Plain) {
            return Ok(Some(Err(no(None, "only AUTHENTICATE PLAIN is supported"))));
        }
        let data = match initial_response {
            Some(r) => r,
            None => {
                self.out.extend_from_slice(b"+ \r\n");
                self.flush(s).await?;
                match self.next_frame(s, Duration::from_secs(120)).await? {
                    Some(Frame::Command(line)) => {
                        let l = line.trim_ascii();
                        if l == b"*" {
                            return Ok(Some(Err(bad("authentication cancelled"))));
                        }
                        match decode_b64(l) {
                            Some(d) => d,
                            None => return Ok(Some(Err(bad("the response is not base64")))),
                        }
                    }
                    Some(_) => return Ok(Some(Err(bad("expected a base64 response line")))),
                    None => return Ok(None),
                }
            }
        };
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        if parts.len() != 3 {
            return Ok(Some(Err(bad("malformed PLAIN credentials"))));
        }
        let (authz, user, pass) = (parts[0], parts[1], parts[2]);
        // Acting as another user needs an admin right this server does not model:
        // an authorization identity other than the authentication one is refused.
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
            return Ok(Some(Err(no(
                Some("AUTHORIZATIONFAILED"),
                "logging in as another user is not allowed",
            ))));
        }
        let user = String::from_utf8_lossy(user).into_owned();
        let pass = String::from_utf8_lossy(pass).into_owned();
        Ok(Some(self.login(tag, user, pass).await))
    }

    pub(super) async fn login(
        &mut self,
        tag: &str,
        user: String,
        pass: String,
    ) -> Result<Next, Reply> {
        if self.account.is_some() {
            return Err(bad("already authenticated"));
        }
        if !self.login_allowed() {
            return Err(no(
                Some("PRIVACYREQUIRED"),
                "login is refused on an unencrypted connection; use STARTTLS or IMAPS",
            ));
        }
        // Throttled before the password is checked: a guesser waits, and costs
        // no Argon2 work meanwhile.
        let (wait, failures) = self.shared.throttle.delay(self.peer, &user);
        if !wait.is_zero() {
            tracing::warn!(
                "imap: login for {user:?} from {} delayed {} ms after {failures} failed logins",
                self.peer_name(),
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
        }
        let who = user.clone();
        match self.call(move |b| b.login(&user, &pass)).await {
            LoginResult::Ok(a) => {
                self.shared.throttle.succeeded(self.peer, &who);
                self.account = Some(a);
                self.framer.set_limits(self.cfg.limits.clone());
                let caps = self.capabilities();
                self.tagged(tag, "OK", Some(&format!("CAPABILITY {caps}")), "logged in");
                Ok(Next::Continue)
            }
            LoginResult::Refused => {
                self.shared.throttle.failed(self.peer, &who);
                self.login_failures += 1;
                // Slows down password guessing on one connection.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if self.login_failures >= self.shared.throttle.config().failures_per_connection {
                    tracing::warn!(
                        "imap: closing the connection from {} after {} failed logins",
                        self.peer_name(),
                        self.login_failures
                    );
                    self.tagged(
                        tag,
                        "NO",
                        Some("AUTHENTICATIONFAILED"),
                        "invalid credentials",
                    );
                    self.untagged("BYE too many failed logins");
                    return Ok(Next::Logout);
                }
                Err(no(Some("AUTHENTICATIONFAILED"), "invalid credentials"))
            }
            LoginResult::Unavailable(msg) => Err(no(Some("UNAVAILABLE"), msg)),
        }
    }

    fn peer_name(&self) -> String {
        self.peer
            .map_or_else(|| "an unknown address".into(), |p| p.to_string())
    }
}

pub(super) fn decode_b64(s: &[u8]) -> Option<Vec<u8>> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s: Vec<u8> = s.iter().copied().filter(|&b| b != b'=').collect();
    let mut out = Vec::new();
    let (mut bits, mut n) = (0u32, 0);
    for b in s {
        let v = A.iter().position(|&x| x == b)? as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}
