//! Durable settings for one run: `ALTER SYSTEM SET fsync = on, synchronous_commit = on` and a
//! reload, with the previous values put back afterwards whatever happens (error, panic or
//! Ctrl-C: see [`DurableGuard`]).

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection};

const SETTINGS: [&str; 2] = ["fsync", "synchronous_commit"];

/// What a setting was before, to put it back: its value in postgresql.auto.conf (an earlier
/// ALTER SYSTEM), or None if it came from elsewhere (RESET restores that).
#[derive(Clone, Debug)]
struct Previous {
    name: &'static str,
    setting: String,
    altered: Option<String>,
}

/// Restores the previous settings when dropped without [`DurableGuard::restore`] having run
/// (an early return or a panic): on a thread of its own with a runtime of its own, since a drop
/// cannot await.
pub struct DurableGuard {
    admin: String,
    previous: Vec<Previous>,
    armed: bool,
}

async fn connect(admin: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(admin).await.context("connecting to DATABASE_URL")
}

async fn show(admin: &str, name: &str) -> anyhow::Result<String> {
    // A new connection: a session's synchronous_commit is set from the configuration when it
    // starts (and at its next command after a reload).
    let mut conn = connect(admin).await?;
    let (value,): (String,) = sqlx::query_as(&format!("SHOW {name}")).fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(value)
}

/// Waits up to 5 s for every `(name, value)` to be what a new connection SHOWs (a reload is
/// asynchronous). Returns what was last seen.
async fn wait_for(admin: &str, wanted: &[(&str, String)]) -> anyhow::Result<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut seen = vec![];
        for (name, _) in wanted {
            seen.push((name.to_string(), show(admin, name).await?));
        }
        let done = wanted.iter().zip(&seen).all(|((_, want), (_, got))| want == got);
        if done || Instant::now() > deadline {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl DurableGuard {
    /// Turns fsync and synchronous_commit on for the whole server (superuser) and waits until a
    /// new connection shows them on. Returns the guard and what SHOW says.
    pub async fn enable(admin: &str) -> anyhow::Result<(Self, Vec<(String, String)>)> {
        let mut conn = connect(admin).await?;
        let mut previous = vec![];
        for name in SETTINGS {
            let (setting, sourcefile): (String, Option<String>) =
                sqlx::query_as("SELECT setting, sourcefile FROM pg_settings WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await?;
            let altered = sourcefile.filter(|f| f.ends_with("postgresql.auto.conf")).map(|_| setting.clone());
            previous.push(Previous { name, setting, altered });
        }
        let guard = Self { admin: admin.to_string(), previous, armed: true };
        for name in SETTINGS {
            sqlx::raw_sql(&format!("ALTER SYSTEM SET {name} = on"))
                .execute(&mut conn)
                .await
                .with_context(|| format!("ALTER SYSTEM SET {name} = on"))?;
        }
        sqlx::raw_sql("SELECT pg_reload_conf()").execute(&mut conn).await?;
        conn.close().await?;
        let wanted: Vec<(&str, String)> = SETTINGS.iter().map(|n| (*n, "on".to_string())).collect();
        let seen = wait_for(admin, &wanted).await?;
        Ok((guard, seen))
    }

    /// Puts the previous settings back and waits until a new connection shows them. Returns
    /// what SHOW says.
    pub async fn restore(mut self) -> anyhow::Result<Vec<(String, String)>> {
        self.armed = false;
        restore(&self.admin, &self.previous).await
    }
}

async fn restore(admin: &str, previous: &[Previous]) -> anyhow::Result<Vec<(String, String)>> {
    let mut conn = connect(admin).await?;
    for p in previous {
        let sql = match &p.altered {
            Some(value) => format!("ALTER SYSTEM SET {} = '{}'", p.name, value.replace('\'', "''")),
            None => format!("ALTER SYSTEM RESET {}", p.name),
        };
        sqlx::raw_sql(&sql).execute(&mut conn).await.with_context(|| sql.clone())?;
    }
    sqlx::raw_sql("SELECT pg_reload_conf()").execute(&mut conn).await?;
    conn.close().await?;
    let wanted: Vec<(&str, String)> = previous.iter().map(|p| (p.name, p.setting.clone())).collect();
    wait_for(admin, &wanted).await
}

impl Drop for DurableGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (admin, previous) = (self.admin.clone(), self.previous.clone());
        let restored = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(restore(&admin, &previous))
        })
        .join();
        match restored {
            Ok(Ok(seen)) => eprintln!("durable run interrupted; settings restored: {}", describe(&seen)),
            Ok(Err(e)) => eprintln!(
                "durable run interrupted and the settings could NOT be restored ({e:#}): run \
                 ALTER SYSTEM RESET fsync; ALTER SYSTEM RESET synchronous_commit; SELECT pg_reload_conf();"
            ),
            Err(_) => eprintln!("durable run interrupted; restoring the settings panicked"),
        }
    }
}

/// `fsync=on, synchronous_commit=on`.
pub fn describe(seen: &[(String, String)]) -> String {
    seen.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(", ")
}
