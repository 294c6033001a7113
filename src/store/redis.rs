//! Redis store, shared by every gateway process that points at the same server. Delivery ids
//! are plain keys with an expiry; rate limits run as one Lua script per request, so that the
//! check and the update are atomic and use the Redis server's clock.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};
use tokio::sync::OnceCell;

use super::{Claim, Limit, StoreError};

/// Time allowed for one Redis command before the store counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

const IN_FLIGHT: &str = "in_flight";
const DELIVERED: &str = "delivered";

/// GCRA over a key holding the bucket's theoretical arrival time in milliseconds.
/// ARGV: interval ms, burst, peek (1 or 0). Returns 0 when admitted, else the wait in ms.
const TAKE_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if allow_at > now then return allow_at - now end
if ARGV[3] == '0' then
  local next_tat = tat + interval
  redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1)
end
return 0
";

pub struct RedisStore {
    client: Client,
    prefix: String,
    connection: OnceCell<ConnectionManager>,
    take: Script,
}

impl RedisStore {
    /// Prepares a store for `url`; nothing connects until the first command.
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client =
            Client::open(url).map_err(|e| format!("invalid Redis URL in store.redis: {e}"))?;
        Ok(RedisStore {
            client,
            prefix: prefix.to_string(),
            connection: OnceCell::new(),
            take: Script::new(TAKE_SCRIPT),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(manager.clone())
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    pub async fn claim(&self, id: &str, window: Duration) -> Result<Claim, StoreError> {
        let mut connection = self.connection().await?;
        let key = self.key("delivery", id);
        let created: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(IN_FLIGHT)
            .arg("NX")
            .arg("PX")
            .arg(millis(window))
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        if created.is_some() {
            return Ok(Claim::New);
        }
        let state: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(match state.as_deref() {
            Some(DELIVERED) => Claim::Delivered,
            Some(_) => Claim::InFlight,
            // Expired between the two commands: claim it again.
            None => Box::pin(self.claim(id, window)).await?,
        })
    }

    pub async fn finish(
        &self,
        id: &str,
        delivered: bool,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let key = self.key("delivery", id);
        let command = if delivered {
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(DELIVERED).arg("PX").arg(millis(window));
            set
        } else {
            let mut del = redis::cmd("DEL");
            del.arg(&key);
            del
        };
        command
            .query_async::<()>(&mut connection)
            .await
            .map_err(failed)
    }

    pub async fn take(
        &self,
        key: &str,
        limit: Limit,
        peek: bool,
    ) -> Result<Option<Duration>, StoreError> {
        let mut connection = self.connection().await?;
        let wait: u64 = self
            .take
            .key(self.key("rate", key))
            .arg(millis(limit.interval).max(1))
            .arg(limit.burst.max(1))
            .arg(if peek { 1 } else { 0 })
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(failed)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn failed(error: redis::RedisError) -> StoreError {
    StoreError(error.to_string())
}
