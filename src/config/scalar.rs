//! Typed scalars of kubeadm's configuration: each is parsed inside serde_yaml's own
//! deserializer call, so a bad value is reported at its line and column. Go's zero-value
//! rule holds: an absent, null or empty (`""`) scalar means "unset". No I/O.

use crate::cluster::bootstrap::{ExtraGroup, Usage};
use crate::duration::Duration;
use crate::net::netaddr::{DnsName, Endpoint, San, ServiceCidrs};
use crate::pki::keys::Algorithm;
use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::PathBuf;

/// A value written in YAML as a string and parsed with a check of its own.
pub trait Scalar: Sized {
    /// What the value is, for "expected ..." in error messages.
    const WHAT: &'static str;
    /// Parses non-empty text.
    fn parse(text: &str) -> Result<Self, String>;
}

/// An optional scalar: absent, `null` and `""` are all `None`.
#[derive(Debug)]
pub struct Opt<T>(pub Option<T>);

impl<T> Default for Opt<T> {
    fn default() -> Opt<T> {
        Opt(None)
    }
}

/// A scalar that must be present in its position (a list item).
#[derive(Debug)]
pub struct Req<T>(pub T);

struct ScalarVisitor<T>(PhantomData<T>);

/// A number where text was expected. The number is left out of the message: it may be a
/// secret written unquoted (a token of digits only reads as a float, which serde would quote).
fn number<E: de::Error>(expected: &dyn de::Expected) -> E {
    E::invalid_type(Unexpected::Other("a number"), expected)
}

/// The `visit_*` methods of a scalar visitor for every kind of number: each refuses it with
/// [`number`].
macro_rules! refuse_numbers {
    ($value:ty) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Err(number(&self))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Err(number(&self))
        }
        fn visit_i128<E: de::Error>(self, _: i128) -> Result<$value, E> {
            Err(number(&self))
        }
        fn visit_u128<E: de::Error>(self, _: u128) -> Result<$value, E> {
            Err(number(&self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Err(number(&self))
        }
    };
}

impl<'de, T: Scalar> Visitor<'de> for ScalarVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<T>, E> {
        match text {
            "" => Ok(None),
            _ => T::parse(text).map(Some).map_err(E::custom),
        }
    }

    refuse_numbers!(Option<T>);

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for Opt<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Opt<T>, D::Error> {
        deserializer
            .deserialize_any(ScalarVisitor(PhantomData))
            .map(Opt)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for Req<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Req<T>, D::Error> {
        struct Required<T>(PhantomData<T>);
        impl<'de, T: Scalar> Visitor<'de> for Required<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::WHAT)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
                T::parse(text).map_err(E::custom)
            }
            refuse_numbers!(T);
        }
        deserializer.deserialize_any(Required(PhantomData)).map(Req)
    }
}

/// The items of a list of scalars.
pub fn items<T>(list: Vec<Req<T>>) -> Vec<T> {
    list.into_iter().map(|Req(item)| item).collect()
}

/// A TCP port; kubeadm's `0` means "the default".
#[derive(Debug, Default)]
pub struct Port(pub Option<u16>);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Port, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535)")
            }
            fn visit_u64<E: de::Error>(self, port: u64) -> Result<Port, E> {
                match u16::try_from(port) {
                    Ok(0) => Ok(Port(None)),
                    Ok(port) => Ok(Port(Some(port))),
                    Err(_) => Err(E::custom(format!("{port} is not a port number (1-65535)"))),
                }
            }
            fn visit_i64<E: de::Error>(self, port: i64) -> Result<Port, E> {
                Err(E::custom(format!("{port} is not a port number (1-65535)")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Port, E> {
                Ok(Port(None))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// A duration that must be longer than zero (a validity period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity(pub Duration);

impl Scalar for Validity {
    const WHAT: &'static str = "a Go duration such as 8760h0m0s";
    fn parse(text: &str) -> Result<Validity, String> {
        let duration: Duration = text.parse()?;
        match duration.as_secs() {
            0 => Err(format!("{text:?}: the validity must be longer than zero")),
            _ => Ok(Validity(duration)),
        }
    }
}

impl Scalar for Duration {
    const WHAT: &'static str = "a Go duration such as 24h0m0s";
    fn parse(text: &str) -> Result<Duration, String> {
        text.parse()
    }
}

impl Scalar for IpAddr {
    const WHAT: &'static str = "an IP address";
    fn parse(text: &str) -> Result<IpAddr, String> {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address"))?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(format!("{text:?} is not a usable host address"));
        }
        Ok(ip)
    }
}

/// A path that must be absolute, as kubeadm requires of its directories.
impl Scalar for PathBuf {
    const WHAT: &'static str = "an absolute path";
    fn parse(text: &str) -> Result<PathBuf, String> {
        match text.starts_with('/') {
            true => Ok(PathBuf::from(text)),
            false => Err(format!("{text:?} is not an absolute path")),
        }
    }
}

/// Free text such as `clusterName` or a token description.
impl Scalar for String {
    const WHAT: &'static str = "a string";
    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
}

macro_rules! from_str_scalar {
    ($($ty:ty => $what:literal),* $(,)?) => {
        $(impl Scalar for $ty {
            const WHAT: &'static str = $what;
            fn parse(text: &str) -> Result<$ty, String> {
                text.parse()
            }
        })*
    };
}

from_str_scalar! {
    DnsName => "a DNS name",
    San => "an IP address or DNS name",
    ServiceCidrs => "a CIDR, or two separated by a comma",
    Endpoint => "HOST[:PORT]",
    Algorithm => "RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384",
    Usage => "signing or authentication",
    ExtraGroup => "a group system:bootstrappers:...",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bootstrap::BootstrapToken;

    #[test]
    fn a_token_that_reads_as_a_number_is_refused_without_quoting_it() {
        for yaml in [
            "314159.2653589793238462",
            "3141592653589793238462",
            "-31415926535897932384626",
            "314159",
        ] {
            let opt = serde_yaml::from_str::<Opt<BootstrapToken>>(yaml).unwrap_err();
            let req = serde_yaml::from_str::<Req<BootstrapToken>>(yaml).unwrap_err();
            for message in [opt.to_string(), req.to_string()] {
                assert!(message.contains("invalid type: a number"), "{message}");
                assert!(!message.contains("14159"), "{message}");
            }
        }
    }
}
