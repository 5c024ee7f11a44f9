//! Who holds a `flock` on a directory, read from Linux's `/proc`, so that a run that waits
//! for the tree's lock can name the holder although the lock leaves no file to record it:
//! the holder's pid from `/proc/locks`, then, for a kubepki process, its command words and
//! start time. Read-only; every read is bounded, and what cannot be read is left out, never
//! an error. It names nothing secret: of a kubepki process only the command words before
//! its first flag (a token is never one), of any other process only its pid and program.

use nix::sys::stat::{major, minor};
use nix::unistd::{SysconfVar, sysconf};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How a holder that is not a kubepki process (or cannot be found) is named.
pub const UNKNOWN_HOLDER: &str = "a process that did not say who it is";

/// The most read of `/proc/locks` (a line per lock, about 15,000 locks) and `/proc/stat`.
const MAX_TABLE_BYTES: u64 = 1 << 20;

/// The most read of one process's `cmdline`, `stat` or `comm`.
const MAX_PROCESS_BYTES: u64 = 4096;

/// The file name of kubepki's program, as the first word of its command line.
const PROGRAM: &str = "kubepki";

/// Names the process holding a `flock` on the open directory `dir`:
/// `pid 42, kubepki certs renew, since 2026-11-23T02:00:00Z` for a kubepki run, else
/// `a process that did not say who it is`, followed by `: pid 42, flock` when it is found.
pub fn describe_holder(dir: &File) -> String {
    let Some(pid) = dir.metadata().ok().and_then(|meta| flock_holder(&meta)) else {
        return UNKNOWN_HOLDER.to_string();
    };
    let proc_dir = Path::new("/proc").join(pid.to_string());
    match kubepki_command(&proc_dir) {
        Some(command) => {
            let since = start_time(&proc_dir).map_or(String::new(), |t| format!(", since {t}"));
            format!("pid {pid}, {command}{since}")
        }
        None => match read_bounded(&proc_dir.join("comm"), MAX_PROCESS_BYTES) {
            Some(program) => format!("{UNKNOWN_HOLDER}: pid {pid}, {}", program.trim_end()),
            None => format!("{UNKNOWN_HOLDER}: pid {pid}"),
        },
    }
}

/// The pid of the process holding a `flock` on the inode of `meta`, from `/proc/locks`.
/// The device must match too, unless only one holder has that inode number (file systems
/// such as btrfs report another device to `stat` than to `/proc/locks`).
fn flock_holder(meta: &std::fs::Metadata) -> Option<u32> {
    let file = File::open("/proc/locks").ok()?;
    let mut same_inode = Vec::new();
    for line in BufReader::new(file.take(MAX_TABLE_BYTES)).lines() {
        if let Some(lock) = line.ok().as_deref().and_then(parse_flock) {
            if lock.inode == meta.ino() {
                same_inode.push(lock);
            }
        }
    }
    let device = (major(meta.dev()), minor(meta.dev()));
    match same_inode.iter().find(|lock| lock.device == device) {
        Some(lock) => Some(lock.pid),
        None if same_inode.len() == 1 => Some(same_inode[0].pid),
        None => None,
    }
}

/// A granted `flock` of `/proc/locks`: who holds it, and on which device and inode.
#[derive(Debug, PartialEq)]
struct FlockEntry {
    pid: u32,
    device: (u64, u64),
    inode: u64,
}

/// Parses a line of `/proc/locks` such as `1: FLOCK  ADVISORY  WRITE 42 fe:00:1234 0 EOF`
/// (major and minor in hex); `None` for other kinds of lock, for waiters (`1: -> FLOCK`) and
/// for holders in another pid namespace (pid 0).
fn parse_flock(line: &str) -> Option<FlockEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, "FLOCK", _, _, pid, file, ..] = fields.as_slice() else {
        return None;
    };
    let mut parts = file.split(':');
    let (Some(maj), Some(min), Some(inode), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let entry = FlockEntry {
        pid: pid.parse().ok()?,
        device: (
            u64::from_str_radix(maj, 16).ok()?,
            u64::from_str_radix(min, 16).ok()?,
        ),
        inode: inode.parse().ok()?,
    };
    (entry.pid > 0).then_some(entry)
}

/// `kubepki <command words>` when the process in `proc_dir` runs kubepki; `None` for any
/// other program.
fn kubepki_command(proc_dir: &Path) -> Option<String> {
    command_of(&read_bounded(&proc_dir.join("cmdline"), MAX_PROCESS_BYTES)?)
}

/// `kubepki <command words>` for a kubepki command line (NUL-separated arguments): the words
/// between the program and the first flag, as long as they look like command words
/// (lower-case letters and dashes). `None` when the program is not kubepki.
fn command_of(cmdline: &str) -> Option<String> {
    let mut args = cmdline.split('\0');
    let program = Path::new(args.next()?).file_name()?;
    if program != PROGRAM {
        return None;
    }
    let words = args.take_while(|arg| is_command_word(arg));
    Some(
        std::iter::once(PROGRAM)
            .chain(words)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A command or phase name (`certs`, `renew`, `etcd-peer`): never a flag, a path, an
/// address or a token, each of which holds some other character.
fn is_command_word(arg: &str) -> bool {
    !arg.is_empty()
        && !arg.starts_with('-')
        && arg.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// When the process in `proc_dir` started, in RFC 3339 to the second: field 22 of its
/// `stat` (clock ticks after boot) plus the boot time, `btime` of `/proc/stat`.
fn start_time(proc_dir: &Path) -> Option<String> {
    let stat = read_bounded(&proc_dir.join("stat"), MAX_PROCESS_BYTES)?;
    let ticks: i64 = after_command_name(&stat)?.nth(19)?.parse().ok()?;
    let ticks_per_second = sysconf(SysconfVar::CLK_TCK).ok()??;
    let started = boot_time()? + ticks / ticks_per_second.max(1);
    OffsetDateTime::from_unix_timestamp(started)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// The fields of a `/proc/<pid>/stat` line after `(comm)`, which may itself hold spaces and
/// parentheses: field 3 (the state) first.
fn after_command_name(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace())
}

/// The boot time in seconds since the epoch, `btime` of `/proc/stat`.
fn boot_time() -> Option<i64> {
    let file = File::open("/proc/stat").ok()?;
    BufReader::new(file.take(MAX_TABLE_BYTES))
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// At most `limit` bytes of the file at `path`, as text (invalid UTF-8 replaced).
fn read_bounded(path: &Path, limit: u64) -> Option<String> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(limit)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_flocks_are_parsed_and_other_lines_are_not() {
        assert_eq!(
            parse_flock("1: FLOCK  ADVISORY  WRITE 26948 fe:00:10019010 0 EOF"),
            Some(FlockEntry {
                pid: 26948,
                device: (0xfe, 0),
                inode: 10_019_010
            })
        );
        for other in [
            "1: -> FLOCK  ADVISORY  WRITE 26949 fe:00:10019010 0 EOF",
            "2: POSIX  ADVISORY  WRITE 26948 fe:00:10019010 0 EOF",
            "3: OFDLCK ADVISORY  READ  -1 00:05:4 0 EOF",
            "4: FLOCK  ADVISORY  WRITE 0 fe:00:10019010 0 EOF",
            "5: FLOCK  ADVISORY  WRITE 42 fe:00 0 EOF",
            "",
        ] {
            assert_eq!(parse_flock(other), None, "{other}");
        }
    }

    #[test]
    fn command_words_stop_at_the_first_flag_path_or_token() {
        for (cmdline, command) in [
            (
                "kubepki\0certs\0renew\0all\0--cert-dir\0/x\0",
                "kubepki certs renew all",
            ),
            (
                "/usr/bin/kubepki\0init\0phase\0certs\0etcd-peer\0-v",
                "kubepki init phase certs etcd-peer",
            ),
            (
                "kubepki\0token\0create\0abcdef.0123456789abcdef\0",
                "kubepki token create",
            ),
            (
                "./kubepki\0join\0lb.example:6443\0--token\0x",
                "kubepki join",
            ),
            ("kubepki\0-v\0init", "kubepki"),
        ] {
            assert_eq!(command_of(cmdline).as_deref(), Some(command), "{cmdline:?}");
        }
        for other in [
            "flock\0/etc/kubernetes\0-c\0sleep 9",
            "kubepki-old\0init",
            "",
        ] {
            assert_eq!(command_of(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_stat_fields_follow_the_last_parenthesis() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0";
        assert_eq!(after_command_name(stat).unwrap().nth(19), Some("1234"));
    }

    #[test]
    fn this_process_started_after_boot_and_before_now() {
        let started = start_time(Path::new("/proc/self")).unwrap();
        let started = OffsetDateTime::parse(&started, &Rfc3339).unwrap();
        let booted = OffsetDateTime::from_unix_timestamp(boot_time().unwrap()).unwrap();
        assert!(booted <= started && started <= OffsetDateTime::now_utc());
    }

    #[test]
    fn a_directory_nobody_locks_has_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        let open = File::open(dir.path()).unwrap();
        assert_eq!(describe_holder(&open), UNKNOWN_HOLDER);
    }
}
