//! Provisioning requests (zmprov): accounts, domains, classes of service,
//! global and server config, distribution lists.

use crate::service::erased;
use crate::{Request, Service, ServiceError};
use mv_directory::Modification;
use serde_json::{Value, json};

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
    pub(crate) fn execute_accounts(&self, req: Request) -> Result<Value, ServiceError> {
        let to = |v: &dyn erased::Ser| v.to_value();
        Ok(match req {
            Request::CreateAccount {
                email,
                password,
                attrs,
            } => to(&self.create_account(&email, password.as_deref(), &attrs)?),
            Request::CreateAccounts { accounts } => to(&self.create_accounts(&accounts)?),
            Request::GetAccount { key } => to(&self.directory().get_account(&key)?),
            Request::GetAllAccounts { domain } => {
                to(&self.directory().list_accounts(domain.as_deref())?)
            }
            Request::ModifyAccount { key, attrs } => {
                to(&self.directory().modify_account(&key, &mods(&attrs)?)?)
            }
            Request::RenameAccount { key, new_email } => {
                let account = self.directory().rename_account(&key, &new_email)?;
                self.store
                    .rename_mailbox(account.mailbox_id, &account.email)?;
                to(&account)
            }
            Request::DeleteAccount { key } => {
                let account = self.directory().delete_account(&key)?;
                self.store.delete_mailbox(account.mailbox_id, &account.id)?;
                to(&account)
            }
            Request::SetPassword { key, password } => {
                self.directory().set_password(&key, &password)?;
                json!({"ok": true})
            }
            Request::AddAccountAlias { key, alias } => {
                to(&self.directory().add_account_alias(&key, &alias)?)
            }
            Request::RemoveAccountAlias { key, alias } => {
                to(&self.directory().remove_account_alias(&key, &alias)?)
            }
            Request::CreateDomain { name, attrs } => {
                to(&self.directory().create_domain(&name, &mods(&attrs)?)?)
            }
            Request::GetDomain { name } => to(&self.directory().get_domain(&name)?),
            Request::GetAllDomains => to(&self.directory().list_domains()?),
            Request::ModifyDomain { name, attrs } => {
                to(&self.directory().modify_domain(&name, &mods(&attrs)?)?)
            }
            Request::DeleteDomain { name } => to(&self.directory().delete_domain(&name, false)?),
            Request::CreateCos { name, attrs } => {
                to(&self.directory().create_cos(&name, &mods(&attrs)?)?)
            }
            Request::CopyCos { source, name } => to(&self.directory().copy_cos(&source, &name)?),
            Request::GetCos { name } => to(&self.directory().get_cos(&name)?),
            Request::GetAllCos => to(&self.directory().list_cos()?),
            Request::ModifyCos { name, attrs } => {
                to(&self.directory().modify_cos(&name, &mods(&attrs)?)?)
            }
            Request::DeleteCos { name } => {
                self.directory().delete_cos(&name, false)?;
                json!({"ok": true})
            }
            Request::SetAccountCos { key, cos } => {
                to(&self.directory().set_account_cos(&key, &cos)?)
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
                json!({
                    "mailboxId": account.mailbox_id.0,
                    "quotaUsed": info.as_ref().map(|i| i.size_used).unwrap_or(0),
                    "quota": quota,
                    "messages": info.as_ref().map(|i| i.message_count).unwrap_or(0),
                    "lastBackupAt": last_backup_at,
                })
            }
            Request::GetAllConfig => to(&self.directory().get_global()?),
            Request::ModifyConfig { attrs } => {
                to(&self.directory().modify_global(&mods(&attrs)?)?)
            }
            Request::GetServer { name } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                let d = self.directory();
                let server = d.get_server(&name)?;
                let effective = d.server_config(&name)?;
                json!({"name": server.name, "attrs": effective})
            }
            Request::GetAllServers => to(&self.directory().list_servers()?),
            Request::ModifyServer { name, attrs } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                to(&self.directory().modify_server(&name, &mods(&attrs)?)?)
            }
            Request::CreateDistributionList { email, attrs } => {
                to(&self.directory().create_dl(&email, &mods(&attrs)?)?)
            }
            Request::GetDistributionList { email } => to(&self.directory().get_dl(&email)?),
            Request::GetAllDistributionLists { domain } => {
                to(&self.directory().list_dls(domain.as_deref())?)
            }
            Request::AddDistributionListMembers { email, members } => {
                to(&self.directory().add_dl_members(&email, &members)?)
            }
            Request::RemoveDistributionListMembers { email, members } => {
                to(&self.directory().remove_dl_members(&email, &members)?)
            }
            Request::DeleteDistributionList { email } => to(&self.directory().delete_dl(&email)?),
            other => self.execute_mail(other)?,
        })
    }
}
