//! Provisioning requests (zmprov): accounts, domains, classes of service,
//! global and server config, distribution lists.

use crate::response::{Ack, MailboxInfo, Response, ServerConfig};
use crate::{Request, Service, ServiceError};
use mv_directory::Modification;

fn mods(attrs: &[String]) -> Result<Vec<Modification>, ServiceError> {
    Ok(Modification::parse_zmprov(attrs)?)
}

impl Service {
    /// Creates an account and its mailbox; if the mailbox cannot be created the
    /// account is removed again, so the two never disagree.
    pub fn create_account(
        &self,
        email: &str,
        password: Option<&str>,
        attrs: &[String],
    ) -> Result<mv_directory::Account, ServiceError> {
        let m = mods(attrs)?;
        let account = self.directory().create_account(email, password, &m)?;
        if let Err(e) = self
            .store
            .create_mailbox(account.mailbox_id, &account.id, &account.email)
        {
            let _ = self.directory().delete_account(&account.id);
            return Err(e.into());
        }
        Ok(account)
    }

    /// Answers the provisioning requests; anything else goes on to
    /// [`Service::execute_mail`].
    pub(crate) fn execute_accounts(&self, req: Request) -> Result<Response, ServiceError> {
        Ok(match req {
            Request::CreateAccount {
                email,
                password,
                attrs,
            } => Response::from(self.create_account(&email, password.as_deref(), &attrs)?),
            Request::CreateAccounts { accounts } => {
                Response::from(self.create_accounts(&accounts)?)
            }
            Request::GetAccount { key } => Response::from(self.directory().get_account(&key)?),
            Request::GetAllAccounts { domain } => {
                Response::from(self.directory().list_accounts(domain.as_deref())?)
            }
            Request::ModifyAccount { key, attrs } => {
                Response::from(self.directory().modify_account(&key, &mods(&attrs)?)?)
            }
            Request::RenameAccount { key, new_email } => {
                let account = self.directory().rename_account(&key, &new_email)?;
                self.store
                    .rename_mailbox(account.mailbox_id, &account.email)?;
                account.into()
            }
            Request::DeleteAccount { key } => {
                let account = self.directory().delete_account(&key)?;
                self.store.delete_mailbox(account.mailbox_id, &account.id)?;
                account.into()
            }
            Request::SetPassword { key, password } => {
                self.directory().set_password(&key, &password)?;
                Ack::OK.into()
            }
            Request::AddAccountAlias { key, alias } => {
                Response::from(self.directory().add_account_alias(&key, &alias)?)
            }
            Request::RemoveAccountAlias { key, alias } => {
                Response::from(self.directory().remove_account_alias(&key, &alias)?)
            }
            Request::CreateDomain { name, attrs } => {
                Response::from(self.directory().create_domain(&name, &mods(&attrs)?)?)
            }
            Request::GetDomain { name } => Response::from(self.directory().get_domain(&name)?),
            Request::GetAllDomains => Response::from(self.directory().list_domains()?),
            Request::ModifyDomain { name, attrs } => {
                Response::from(self.directory().modify_domain(&name, &mods(&attrs)?)?)
            }
            Request::DeleteDomain { name } => {
                Response::from(self.directory().delete_domain(&name, false)?)
            }
            Request::CreateCos { name, attrs } => {
                Response::from(self.directory().create_cos(&name, &mods(&attrs)?)?)
            }
            Request::CopyCos { source, name } => {
                Response::from(self.directory().copy_cos(&source, &name)?)
            }
            Request::GetCos { name } => Response::from(self.directory().get_cos(&name)?),
            Request::GetAllCos => Response::from(self.directory().list_cos()?),
            Request::ModifyCos { name, attrs } => {
                Response::from(self.directory().modify_cos(&name, &mods(&attrs)?)?)
            }
            Request::DeleteCos { name } => {
                self.directory().delete_cos(&name, false)?;
                Ack::OK.into()
            }
            Request::SetAccountCos { key, cos } => {
                Response::from(self.directory().set_account_cos(&key, &cos)?)
            }
            Request::GetMailboxInfo { key } => {
                let (account, quota, last_backup_at) = {
                    let d = self.directory();
                    let a = d.get_account(&key)?;
                    let q = d.effective_quota(&a)?;
                    let b = d.last_backup_at(a.mailbox_id)?;
                    (a, q, b)
                };
                let info = self.store.mailbox(account.mailbox_id).info()?;
                MailboxInfo {
                    mailbox_id: account.mailbox_id.0,
                    quota_used: info.as_ref().map(|i| i.size_used).unwrap_or(0),
                    quota,
                    messages: info.as_ref().map(|i| i.message_count).unwrap_or(0),
                    last_backup_at,
                }
                .into()
            }
            Request::GetAllConfig => Response::from(self.directory().get_global()?),
            Request::ModifyConfig { attrs } => {
                Response::from(self.directory().modify_global(&mods(&attrs)?)?)
            }
            Request::GetServer { name } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                let d = self.directory();
                let server = d.get_server(&name)?;
                let effective = d.server_config(&name)?;
                ServerConfig {
                    name: server.name,
                    attrs: effective,
                }
                .into()
            }
            Request::GetAllServers => Response::from(self.directory().list_servers()?),
            Request::ModifyServer { name, attrs } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                Response::from(self.directory().modify_server(&name, &mods(&attrs)?)?)
            }
            Request::CreateDistributionList { email, attrs } => {
                Response::from(self.directory().create_dl(&email, &mods(&attrs)?)?)
            }
            Request::GetDistributionList { email } => {
                Response::from(self.directory().get_dl(&email)?)
            }
            Request::GetAllDistributionLists { domain } => {
                Response::from(self.directory().list_dls(domain.as_deref())?)
            }
            Request::AddDistributionListMembers { email, members } => {
                Response::from(self.directory().add_dl_members(&email, &members)?)
            }
            Request::RemoveDistributionListMembers { email, members } => {
                Response::from(self.directory().remove_dl_members(&email, &members)?)
            }
            Request::DeleteDistributionList { email } => {
                Response::from(self.directory().delete_dl(&email)?)
            }
            other => self.execute_mail(other)?,
        })
    }
}
