//! Channels: the ways a notification reaches its user — the in-app inbox (with its live
//! event), and the deliveries to targets: email, web push, SMS and webhooks.

use super::FieldErrors;
use super::target::TargetKind;

/// One way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    InApp,
    /// A delivery to the targets of this kind.
    Target(TargetKind),
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Self::InApp,
        Self::Target(TargetKind::Email),
        Self::Target(TargetKind::WebPush),
        Self::Target(TargetKind::Sms),
        Self::Target(TargetKind::Webhook),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "inApp",
            Self::Target(kind) => kind.as_str(),
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == value)
            .ok_or_else(|| format!("unknown channel {value:?}"))
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The channels this version sends. Web push, SMS and webhook targets and providers are
/// stored, but no worker sends them yet: naming one is refused rather than left pending.
const SENT_CHANNELS: [Channel; 2] = [Channel::InApp, Channel::Target(TargetKind::Email)];

/// The channels a notification goes out on: those named, in a fixed order without repeats.
/// `None` (nothing named) is the default: the inbox, and email when the notification names an
/// address (a broadcast: when it emails).
pub fn validate(channels: Option<Vec<Channel>>, errors: &mut FieldErrors) -> Option<Vec<Channel>> {
    let mut channels = channels?;
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        errors.add(
            "channels",
            "Name at least one channel, or leave channels out for the default.",
        );
    } else if let Some(unsent) = channels.iter().find(|c| !SENT_CHANNELS.contains(c)) {
        errors.add(
            "channels",
            format!("{} deliveries are not sent by this version of Herald yet (its targets can be registered); use inApp and email.", unsent.as_str()),
        );
    } else if !channels.contains(&Channel::InApp) {
        // Every notification is an inbox row: the deliveries, their log and the read state
        // hang off it.
        errors.add(
            "channels",
            "inApp must be one of the channels: every notification is in the user's inbox.",
        );
    }
    Some(channels)
}

/// The channels in effect: `named`, or the default.
pub fn effective(named: Option<&[Channel]>, emails: bool) -> Vec<Channel> {
    match named {
        Some(channels) => channels.to_vec(),
        None if emails => vec![Channel::InApp, Channel::Target(TargetKind::Email)],
        None => vec![Channel::InApp],
    }
}

/// The target kinds among `channels`.
pub fn target_kinds(channels: &[Channel]) -> Vec<TargetKind> {
    channels
        .iter()
        .filter_map(|channel| match channel {
            Channel::Target(kind) => Some(*kind),
            Channel::InApp => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_channels_are_ordered_once_and_include_the_inbox() {
        let mut errors = FieldErrors::new();
        let email = Channel::Target(TargetKind::Email);
        let named = validate(Some(vec![email, Channel::InApp, email]), &mut errors);
        assert_eq!(named, Some(vec![Channel::InApp, email]));
        assert!(errors.is_empty());
        validate(Some(vec![email]), &mut errors);
        validate(Some(vec![]), &mut errors);
        validate(
            Some(vec![Channel::InApp, Channel::Target(TargetKind::Sms)]),
            &mut errors,
        );
        assert_eq!(errors.fields()["channels"].len(), 3);
        assert_eq!(validate(None, &mut errors), None);
    }

    #[test]
    fn the_default_emails_only_with_an_address() {
        let email = Channel::Target(TargetKind::Email);
        assert_eq!(effective(None, true), [Channel::InApp, email]);
        assert_eq!(effective(None, false), [Channel::InApp]);
        assert_eq!(
            target_kinds(&effective(Some(&[Channel::InApp, email]), false)),
            [TargetKind::Email]
        );
        assert_eq!("webPush".parse(), Ok(Channel::Target(TargetKind::WebPush)));
    }
}
