//! Bounded reads of the local files kubepki is given or finds (the tree's files, a
//! configuration, a discovery file): a regular file only, opened without blocking so that a
//! FIFO or a device is refused at once rather than waited on or read forever, and at most a
//! cap of bytes, so that no file is read whole whatever its size.

use nix::fcntl::OFlag;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most kubepki reads of one file: a kubeadm certificate, key or kubeconfig is a few
/// KiB (an RSA-4096 admin.conf, the largest, about 12 KiB), a configuration tens of KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// The path is a symbolic link (only when links are not followed).
    Symlink,
    /// Not a regular file: what it is instead.
    NotRegular(&'static str),
    /// Longer than the cap.
    TooLarge(u64),
    /// Any other failure of the system.
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Symlink => f.write_str("a symbolic link"),
            ReadError::NotRegular(what) => write!(f, "{what}, not a regular file"),
            ReadError::TooLarge(cap) => {
                write!(f, "larger than {cap} bytes, which no such file is")
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// How a link at the path is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Followed (a file the user named).
    Follow,
    /// Refused (a file inside the tree).
    Refuse,
}

/// Reads `path`, at most `cap` bytes, if it exists: `None` when it does not.
pub fn read_regular(path: &Path, links: Links, cap: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let mut flags = OFlag::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= OFlag::O_NOFOLLOW;
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            return Err(ReadError::Symlink);
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let kind = file.metadata().map_err(ReadError::Io)?.file_type();
    let not_regular = match () {
        _ if kind.is_file() => None,
        _ if kind.is_dir() => Some("a directory"),
        _ if kind.is_fifo() => Some("a FIFO"),
        _ if kind.is_char_device() => Some("a character device"),
        _ if kind.is_block_device() => Some("a block device"),
        _ if kind.is_socket() => Some("a socket"),
        _ => Some("a special file"),
    };
    if let Some(what) = not_regular {
        return Err(ReadError::NotRegular(what));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    match bytes.len() as u64 > cap {
        true => Err(ReadError::TooLarge(cap)),
        false => Ok(Some(bytes)),
    }
}

/// Reads the file `path` that the user named (a link followed), as `read_regular`; that it
/// does not exist is an error too.
pub fn read_named(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    read_regular(path, Links::Follow, cap)?
        .ok_or_else(|| ReadError::Io(std::io::Error::from(nix::errno::Errno::ENOENT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_never_past_the_cap() {
        let dir = tempfile::tempdir().expect("a directory");
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").expect("written");
        assert_eq!(
            read_regular(&file, Links::Refuse, 5).expect("read"),
            Some(b"12345".to_vec())
        );
        assert!(matches!(
            read_regular(&file, Links::Refuse, 4),
            Err(ReadError::TooLarge(4))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("none"), Links::Refuse, 4),
            Ok(None)
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("a FIFO");
        assert!(matches!(
            read_regular(&fifo, Links::Follow, 4),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), Links::Follow, 4),
            Err(ReadError::NotRegular("a character device"))
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("a link");
        assert!(matches!(
            read_regular(&link, Links::Refuse, 5),
            Err(ReadError::Symlink)
        ));
        assert!(read_regular(&link, Links::Follow, 5).is_ok_and(|b| b.is_some()));
    }
}
