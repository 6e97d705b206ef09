//! Who may do what: passwords (argon2id), API tokens and session cookies (random secrets kept
//! only as SHA-256 digests, compared in constant time), CSRF tokens, the log-in rate limit,
//! and the access rules (pure): an operator controls everything; an editor resyncs the
//! sources feeding its sites and publishes or rolls back only those sites.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::db::accounts::User;

/// A password's argon2id hash in the PHC string format.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a stored hash (a malformed hash matches nothing).
pub fn password_matches(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Why a new password is refused, if it is.
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.chars().count() < 10 {
        Some("a password needs at least 10 characters")
    } else if password.len() > 1024 {
        Some("a password may have at most 1024 bytes")
    } else {
        None
    }
}

/// A random secret, as 64 hexadecimal digits.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 digest a secret is kept as.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether two secrets (or digests) are equal, in time independent of where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// An API token: `tthc_<id>_<secret>`; the id finds the stored digest of the secret.
pub fn token_text(id: i64, secret: &str) -> String {
    format!("tthc_{id}_{secret}")
}

/// A token's id and secret, if it has the token's shape.
pub fn parse_token(text: &str) -> Option<(i64, &str)> {
    let rest = text.trim().strip_prefix("tthc_")?;
    let (id, secret) = rest.split_once('_')?;
    let id = id.parse().ok()?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

/// Whether `user` may resync `source`: an operator, or an editor of a site it feeds.
pub fn may_sync(user: &User, config: &Config, source: &str) -> bool {
    user.operator
        || config
            .sites_of(source)
            .any(|site| may_publish(user, &site.name))
}

/// Whether `user` may publish or roll back `site`.
pub fn may_publish(user: &User, site: &str) -> bool {
    user.operator || user.sites.iter().any(|s| s == site)
}

/// Why a resync a user asked for is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such source: the configuration's message, listing the configured ones.
    UnknownSource(String),
    /// The source feeds none of the user's sites.
    NotAllowed { source: String },
    /// Every source was asked for, and the user may resync none.
    NothingAllowed,
}

/// The sources a resync by `user` covers, pure: the one `named` if it may resync it, else
/// (none named) every source it may resync.
pub fn resync_sources(
    user: &User,
    config: &Config,
    named: Option<&str>,
) -> Result<Vec<String>, Refusal> {
    let sources: Vec<String> = match named {
        Some(name) => {
            config.source(name).map_err(Refusal::UnknownSource)?;
            if !may_sync(user, config, name) {
                return Err(Refusal::NotAllowed {
                    source: name.to_string(),
                });
            }
            vec![name.to_string()]
        }
        None => config
            .sources
            .iter()
            .filter(|s| may_sync(user, config, &s.name))
            .map(|s| s.name.clone())
            .collect(),
    };
    if sources.is_empty() {
        return Err(Refusal::NothingAllowed);
    }
    Ok(sources)
}

/// Counts failed log-ins per name and per address over a quarter of an hour; a key at its
/// limit is refused until its oldest failure ages out.
#[derive(Debug)]
pub struct LoginLimiter {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(limit: u32) -> LoginLimiter {
        LoginLimiter {
            limit,
            window: Duration::from_secs(15 * 60),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long until a log-in with these keys may be tried, or `None` when it may be now.
    pub fn wait(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|key| {
                let list = failures.get_mut(key)?;
                while list
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    list.pop_front();
                }
                (list.len() >= self.limit as usize)
                    .then(|| list.front().map(|t| self.window - now.duration_since(*t)))
                    .flatten()
            })
            .max()
    }

    /// Counts a failed log-in against each key.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            failures.entry(key.clone()).or_default().push_back(now);
        }
    }

    /// Forgets a name's failures after it logged in.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_and_checked() {
        let hash = hash_password("mật khẩu dài lắm").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches(&hash, "mật khẩu dài lắm"));
        assert!(!password_matches(&hash, "mật khẩu dài lắm "));
        assert!(!password_matches("not a hash", "x"));
        assert!(password_problem("short").is_some());
    }

    #[test]
    fn tokens_parse_only_in_their_shape() {
        let secret = new_secret();
        let text = token_text(42, &secret);
        assert_eq!(parse_token(&text), Some((42, secret.as_str())));
        assert_eq!(parse_token("tthc_42_abc"), None);
        assert_eq!(parse_token("Bearer x"), None);
        assert!(same(&digest(&secret), &digest(&secret)));
        assert!(!same(&digest(&secret), &digest("other")));
    }

    #[test]
    fn the_limiter_refuses_after_the_limit_until_the_window_passes() {
        let limiter = LoginLimiter::new(2);
        let keys = vec!["name:an".to_string(), "addr:127.0.0.1".to_string()];
        let start = Instant::now();
        assert_eq!(limiter.wait(&keys, start), None);
        limiter.failed(&keys, start);
        assert_eq!(limiter.wait(&keys, start), None);
        limiter.failed(&keys, start);
        let wait = limiter
            .wait(&keys, start + Duration::from_secs(60))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(14 * 60));
        assert_eq!(
            limiter.wait(&keys, start + Duration::from_secs(15 * 60)),
            None
        );
        // Another name from the same address is refused too.
        let other = vec!["name:binh".to_string(), "addr:127.0.0.1".to_string()];
        limiter.failed(&keys, start + Duration::from_secs(900));
        limiter.failed(&keys, start + Duration::from_secs(900));
        assert!(
            limiter
                .wait(&other, start + Duration::from_secs(901))
                .is_some()
        );
    }
}
