//! CPU time, read from /proc: this process's, and the PostgreSQL cluster's (the postmaster and
//! every process it started). Both in clock ticks of the kernel, so to the nearest tick (10 ms
//! at the usual 100 ticks a second) per process.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

/// Kernel clock ticks per second, and how that was learnt.
#[derive(Clone, Copy, Debug)]
pub struct TickRate {
    pub per_second: u64,
    pub measured: bool,
}

impl TickRate {
    /// `getconf CLK_TCK` (the std library does not expose sysconf); 100 if that fails.
    pub fn read() -> Self {
        let answer = std::process::Command::new("getconf").arg("CLK_TCK").output().ok();
        let parsed = answer
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().ok())
            .filter(|&n| n > 0);
        match parsed {
            Some(per_second) => Self { per_second, measured: true },
            None => Self { per_second: 100, measured: false },
        }
    }

    fn duration(self, ticks: u64) -> Duration {
        Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / self.per_second)
    }

    pub fn describe(self) -> String {
        if self.measured {
            format!("{} ticks/s (getconf CLK_TCK)", self.per_second)
        } else {
            format!("{} ticks/s ASSUMED (getconf CLK_TCK failed)", self.per_second)
        }
    }
}

/// Fields of /proc/<pid>/stat this module reads, in clock ticks.
struct ProcStat {
    ppid: u32,
    /// utime + stime: the process's own CPU.
    own: u64,
    /// cutime + cstime: CPU of its children that ended and were waited for.
    reaped_children: u64,
}

fn read_stat(pid: &str) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split_whitespace().collect();
    // fields[0] is field 3 of proc(5) (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(field(4)?).ok()?,
        own: field(14)? + field(15)?,
        reaped_children: field(16)? + field(17)?,
    })
}

/// CPU this process has used (every thread, living or ended), user and system.
pub fn process_cpu(rate: TickRate) -> Duration {
    rate.duration(read_stat("self").map(|s| s.own).unwrap_or(0))
}

/// The PostgreSQL cluster as processes on this machine.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub postmaster: u32,
    /// How the postmaster was found.
    pub found_by: String,
    pub rate: TickRate,
}

impl Cluster {
    /// The postmaster of `pool`'s server: the first line of postmaster.pid in its data
    /// directory, or else the parent of this connection's backend. None when the server is not
    /// on this machine (or its processes cannot be read).
    pub async fn find(pool: &PgPool, rate: TickRate) -> anyhow::Result<Option<Self>> {
        let (data_directory,): (String,) = sqlx::query_as("SHOW data_directory").fetch_one(pool).await?;
        let pid_file = std::path::Path::new(&data_directory).join("postmaster.pid");
        let from_file = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let (postmaster, found_by) = match from_file {
            Some(pid) => (pid, format!("{} line 1", pid_file.display())),
            None => {
                let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(pool).await?;
                match read_stat(&backend.to_string()) {
                    Some(stat) => (stat.ppid, format!("parent of backend {backend}")),
                    None => return Ok(None),
                }
            }
        };
        if read_stat(&postmaster.to_string()).is_none() {
            return Ok(None);
        }
        Ok(Some(Self { postmaster, found_by, rate }))
    }

    /// CPU the cluster has used: the postmaster's own, its children's that ended (the postmaster
    /// waits for every backend), and its living children's. Only growth between two readings
    /// means anything.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let postmaster = read_stat(&self.postmaster.to_string()).context("the postmaster is gone")?;
        let mut ticks = postmaster.own + postmaster.reaped_children;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
            if let Some(stat) = read_stat(pid).filter(|s| s.ppid == self.postmaster) {
                ticks += stat.own + stat.reaped_children;
            }
        }
        Ok(self.rate.duration(ticks))
    }
}

/// CPU of the cluster and of this process over one measured stretch.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// None when the cluster's processes cannot be read.
    pub server: Option<Duration>,
    pub client: Duration,
}

impl CpuUse {
    pub fn total(&self) -> Option<Duration> {
        self.server.map(|s| s + self.client)
    }
}

/// A reading at the start of a measured stretch.
pub struct CpuMark<'a> {
    cluster: Option<&'a Cluster>,
    server: Option<Duration>,
    client: Duration,
}

impl<'a> CpuMark<'a> {
    pub fn start(cluster: Option<&'a Cluster>) -> Self {
        let rate = cluster.map(|c| c.rate).unwrap_or_else(TickRate::read);
        Self { cluster, server: cluster.and_then(|c| c.cpu().ok()), client: process_cpu(rate) }
    }

    pub fn stop(self) -> CpuUse {
        let rate = self.cluster.map(|c| c.rate).unwrap_or_else(TickRate::read);
        let server = match (self.cluster, self.server) {
            (Some(c), Some(before)) => c.cpu().ok().map(|after| after.saturating_sub(before)),
            _ => None,
        };
        CpuUse { server, client: process_cpu(rate).saturating_sub(self.client) }
    }
}
