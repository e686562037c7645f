//! The command table: which handler answers each IMAP command, and the tagged
//! OK that closes a command that succeeded.

use super::*;

impl<B: Backend> Session<B> {
    /// Runs one parsed command: its untagged replies and, unless it failed, its
    /// tagged OK (a failure comes back as the [`Reply`] to send).
    pub(super) async fn dispatch<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        tag: &str,
        cmd: Command<'_>,
    ) -> std::io::Result<Result<Next, Reply>> {
        let ok = |me: &mut Self, code: Option<&str>, text: &str| {
            me.tagged(tag, "OK", code, text);
            Ok(Next::Continue)
        };
        let r: Result<Next, Reply> = match cmd.body {
            CommandBody::Capability => {
                let c = self.capabilities();
                self.untagged(&format!("CAPABILITY {c}"));
                ok(self, None, "CAPABILITY completed")
            }
            CommandBody::Noop | CommandBody::Check => {
                self.refresh(true).await;
                ok(self, None, "completed")
            }
            CommandBody::Logout => {
                self.untagged("BYE logging out");
                self.tagged(tag, "OK", None, "LOGOUT completed");
                Ok(Next::Logout)
            }
            CommandBody::StartTLS => {
                if self.account.is_some() {
                    Err(bad("already authenticated"))
                } else if self.secure {
                    Err(bad("TLS is already active"))
                } else if !self.cfg.starttls {
                    Err(no(None, "TLS is not configured"))
                } else {
                    self.tagged(tag, "OK", None, "begin TLS negotiation now");
                    Ok(Next::StartTls)
                }
            }
            CommandBody::Login { username, password } => {
                let user = convert::astring(&username);
                let pass = convert::astring(password.declassify());
                self.login(tag, user, pass).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let ir = initial_response.map(|r| r.declassify().to_vec());
                match self.authenticate(s, tag, &mechanism, ir).await? {
                    Some(r) => r,
                    None => return Ok(Ok(Next::Logout)),
                }
            }
            CommandBody::Id { .. } => {
                self.untagged("ID (\"name\" \"mailvault\")");
                ok(self, None, "ID completed")
            }
            CommandBody::Enable { capabilities } => self.enable(tag, capabilities.as_ref()),
            CommandBody::Namespace => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => {
                    self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                    ok(self, None, "NAMESPACE completed")
                }
            },
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                let read_only = self.cfg.read_only;
                self.select(tag, &mailbox, read_only, &parameters).await
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(tag, &mailbox, true, &parameters).await,
            CommandBody::Unselect => match self.need_selected() {
                Err(e) => Err(e),
                Ok(()) => {
                    self.selected = None;
                    ok(self, None, "UNSELECT completed")
                }
            },
            CommandBody::Close => match self.need_selected() {
                Err(e) => Err(e),
                Ok(()) => {
                    let sel = self.selected.take().expect("checked");
                    if !sel.read_only {
                        let acct = self
                            .account
                            .clone()
                            .expect("selected implies authenticated");
                        let id = sel.id;
                        // CLOSE expunges silently; a failure leaves the messages.
                        if let Err(e) = self.call(move |b| b.expunge(&acct, id, None)).await {
                            tracing::warn!("CLOSE expunge failed: {e}");
                        }
                    }
                    ok(self, None, "CLOSE completed")
                }
            },
            CommandBody::Create { mailbox } => self
                .create(&mailbox)
                .await
                .map(|()| self.completed(tag, "CREATE")),
            CommandBody::Delete { mailbox } => self
                .delete(&mailbox)
                .await
                .map(|()| self.completed(tag, "DELETE")),
            CommandBody::Rename { from, to } => self
                .rename(&from, &to)
                .await
                .map(|()| self.completed(tag, "RENAME")),
            CommandBody::Subscribe { mailbox } => self
                .subscribe(&mailbox, true)
                .await
                .map(|()| self.completed(tag, "SUBSCRIBE")),
            CommandBody::Unsubscribe { mailbox } => self
                .subscribe(&mailbox, false)
                .await
                .map(|()| self.completed(tag, "UNSUBSCRIBE")),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self
                .list(&reference, &mailbox_wildcard)
                .await
                .map(|()| self.completed(tag, "LIST")),
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self
                .lsub(&reference, &mailbox_wildcard)
                .await
                .map(|()| self.completed(tag, "LSUB")),
            CommandBody::Status {
                mailbox,
                item_names,
            } => self
                .status(&mailbox, &item_names)
                .await
                .map(|()| self.completed(tag, "STATUS")),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let data = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
                    LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
                };
                let (bits, kw) = flags_of(&flags);
                let date_ms = date.map(|d| d.as_ref().timestamp_millis());
                match self.append(&mailbox, data, bits, kw, date_ms).await {
                    Ok((v, u)) => {
                        self.refresh(true).await;
                        ok(
                            self,
                            Some(&format!("APPENDUID {v} {u}")),
                            "APPEND completed",
                        )
                    }
                    Err(e) => Err(e),
                }
            }
            CommandBody::Expunge => self
                .expunge(None)
                .await
                .map(|()| self.completed(tag, "EXPUNGE")),
            CommandBody::ExpungeUid { sequence_set } => self
                .expunge(Some(&sequence_set))
                .await
                .map(|()| self.completed(tag, "UID EXPUNGE")),
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                let cs = charset.as_ref().map(|c| c.as_ref().to_ascii_uppercase());
                if cs
                    .as_deref()
                    .is_some_and(|c| c != "UTF-8" && c != "US-ASCII")
                {
                    Err(no(
                        Some("BADCHARSET (UTF-8 US-ASCII)"),
                        "unsupported charset",
                    ))
                } else {
                    self.search(tag, criteria.as_ref(), uid)
                        .await
                        .map(|()| self.completed(tag, "SEARCH"))
                }
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => self
                .sort(
                    tag,
                    sort_criteria.as_ref(),
                    charset.as_ref(),
                    search_criteria.as_ref(),
                    uid,
                )
                .await
                .map(|()| self.completed(tag, "SORT")),
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => self
                .thread(&algorithm, charset.as_ref(), search_criteria.as_ref(), uid)
                .await
                .map(|()| self.completed(tag, "THREAD")),
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let r = self
                    .fetch(s, &sequence_set, &macro_or_item_names, uid, &modifiers)
                    .await?;
                r.map(|()| self.completed(tag, "FETCH"))
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => match self
                .store(&sequence_set, kind, response, &flags, uid, &modifiers)
                .await
            {
                Ok(None) => ok(self, None, "STORE completed"),
                Ok(Some(modified)) => ok(
                    self,
                    Some(&format!("MODIFIED {modified}")),
                    "conditional STORE failed for some messages",
                ),
                Err(e) => Err(e),
            },
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => match self.copy_move(&sequence_set, &mailbox, uid, false).await {
                Ok(code) => ok(self, code.as_deref(), "COPY completed"),
                Err(e) => Err(e),
            },
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => match self.copy_move(&sequence_set, &mailbox, uid, true).await {
                Ok(code) => {
                    if let Some(c) = code {
                        self.untagged(&format!("OK [{c}] moved"));
                    }
                    self.refresh(true).await;
                    ok(self, None, "MOVE completed")
                }
                Err(e) => Err(e),
            },
            CommandBody::GetQuotaRoot { mailbox } => self
                .quota_root(&mailbox)
                .await
                .map(|()| self.completed(tag, "GETQUOTAROOT")),
            CommandBody::GetQuota { root } => self
                .quota(root.as_ref())
                .await
                .map(|()| self.completed(tag, "GETQUOTA")),
            CommandBody::SetQuota { .. } => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => Err(no(
                    Some("NOPERM"),
                    "quotas are set by the administrator (zimbraMailQuota)",
                )),
            },
            CommandBody::Idle => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => return self.idle(s, tag).await.map(Ok),
            },
            other => Err(bad(format!("{} is not supported", other.name()))),
        };
        // Untagged updates before the tagged reply of commands that allow them.
        Ok(r)
    }

    /// The tagged OK of a command with nothing more to say: "<NAME> completed".
    fn completed(&mut self, tag: &str, name: &str) -> Next {
        self.tagged(tag, "OK", None, &format!("{name} completed"));
        Next::Continue
    }
}
