//! Pushing a patch to Asana: every field's part of one `PUT /tasks/{gid}` is planned first
//! ([`edit`]: enum option gids resolved, the description merged into the rich text), then
//! sent; when Asana refuses the whole update, the fields are sent one by one so only the
//! refused ones are refused.

mod edit;

use std::collections::HashMap;
use std::sync::Mutex;

use ordonis_core::{Field, FieldPatch, IntegrationId, ProviderContext, ProviderError, PushOutcome};
use serde_json::{Map, Value};

use edit::Plan;
pub(crate) use edit::status_refusal;

use crate::client::AsanaClient;
use crate::config::AsanaOptions;
use crate::error::AsanaError;

/// An enum custom field's enabled options: (name, option gid).
type EnumOptions = Vec<(String, String)>;

/// What pushing keeps between calls: the enum options of the priority and status fields,
/// resolved by name once and cached per integration (refreshed when a name is not found).
#[derive(Debug, Default)]
pub(crate) struct Pusher {
    enum_cache: Mutex<HashMap<(IntegrationId, String), EnumOptions>>,
}

impl Pusher {
    /// Writes `patch` to task `gid`.
    pub(crate) async fn push(
        &self,
        ctx: &ProviderContext,
        client: &AsanaClient,
        opts: &AsanaOptions,
        gid: &str,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        let mut plan = Plan::default();
        // Which request keys each field wrote, for a field-by-field retry.
        let mut keys_of: Vec<(Field, Vec<String>, Vec<String>)> = Vec::new();
        for v in patch.values() {
            let data_before: Vec<String> = plan.data.keys().cloned().collect();
            let custom_before: Vec<String> = plan.custom.keys().cloned().collect();
            self.plan_field(ctx, client, opts, gid, v, &mut plan)
                .await?;
            let new_data: Vec<String> = plan
                .data
                .keys()
                .filter(|k| !data_before.contains(k))
                .cloned()
                .collect();
            let new_custom: Vec<String> = plan
                .custom
                .keys()
                .filter(|k| !custom_before.contains(k))
                .cloned()
                .collect();
            if plan.fields.last() == Some(&v.field()) {
                keys_of.push((v.field(), new_data, new_custom));
            }
        }
        let mut out = PushOutcome {
            refused: plan.refused,
            settled: plan.settled,
            ..PushOutcome::default()
        };
        if plan.data.is_empty() && plan.custom.is_empty() {
            return Ok(out);
        }
        let mut data = plan.data.clone();
        if !plan.custom.is_empty() {
            data.insert("custom_fields".into(), Value::Object(plan.custom.clone()));
        }
        match client.update_task(gid, &data).await {
            Ok(_) => out.applied.extend(plan.fields),
            // One refused field refuses the whole PUT: send the fields one by one, so only
            // the refused ones are refused (a priority field not on the task's project).
            Err(AsanaError::Rejected { status, message }) if keys_of.len() > 1 => {
                tracing::info!(task = %gid, %status, message = %ordonis_core::provider_http::bounded_error(&message), "Asana refused the update: retrying field by field");
                for (field, data_keys, custom_keys) in keys_of {
                    let mut one: Map<String, Value> = data_keys
                        .iter()
                        .filter_map(|k| plan.data.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    let custom: Map<String, Value> = custom_keys
                        .iter()
                        .filter_map(|k| plan.custom.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    if !custom.is_empty() {
                        one.insert("custom_fields".into(), Value::Object(custom));
                    }
                    match client.update_task(gid, &one).await {
                        Ok(_) => out.applied.push(field),
                        Err(AsanaError::Rejected { status, message }) => out.refused.push((
                            field,
                            format!("Asana rejected the update ({status}): {message}"),
                        )),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(AsanaError::Rejected { status, message }) => {
                let reason = format!("Asana rejected the update ({status}): {message}");
                out.refused
                    .extend(plan.fields.into_iter().map(|f| (f, reason.clone())));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(out)
    }

    fn cached(&self, key: &(IntegrationId, String)) -> Option<EnumOptions> {
        self.enum_cache.lock().ok()?.get(key).cloned()
    }

    /// The gid of the first enabled option of enum field `field_gid` that `pick` accepts,
    /// from the cache, else after (re)loading the field's options.
    pub(crate) async fn option_gid(
        &self,
        ctx: &ProviderContext,
        client: &AsanaClient,
        field_gid: &str,
        pick: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, AsanaError> {
        let key = (ctx.integration_id, field_gid.to_owned());
        let find = |opts: &EnumOptions| {
            opts.iter()
                .find(|(name, _)| pick(name))
                .map(|(_, gid)| gid.clone())
        };
        if let Some(found) = self.cached(&key).as_ref().and_then(find) {
            return Ok(Some(found));
        }
        let field = client.get_custom_field(field_gid).await?;
        let opts: EnumOptions = field
            .get("enum_options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|o| o.get("enabled").and_then(Value::as_bool) != Some(false))
                    .filter_map(|o| {
                        Some((
                            o.get("name")?.as_str()?.to_owned(),
                            o.get("gid")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let found = find(&opts);
        if let Ok(mut cache) = self.enum_cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, opts);
        }
        Ok(found)
    }
}
