//! One verifier per provider, each in its own file, over shared building
//! blocks (`kit`). Each follows `spec/providers.md` to the letter: header
//! names, signed content, encodings, secret format, default tolerance.
//!
//! | type | provider | secret constructor |
//! |---|---|---|
//! | [`StandardWebhooks`] | Standard Webhooks v1, white-labelled Svix, Zapier connections, GitLab signing token | [`Secret::standard_webhooks`](crate::Secret::standard_webhooks) |
//! | [`Svix`] | Svix, Clerk, Resend | [`Secret::standard_webhooks`](crate::Secret::standard_webhooks) |
//! | [`Stripe`] | Stripe | [`Secret::text`](crate::Secret::text) (the whole `whsec_…`) |
//! | [`GitHub`] | GitHub | [`Secret::text`](crate::Secret::text) |
//! | [`Slack`] | Slack | [`Secret::text`](crate::Secret::text) |
//! | [`Shopify`] | Shopify | [`Secret::text`](crate::Secret::text) |
//! | [`Intercom`] | Intercom | [`Secret::text`](crate::Secret::text) |
//! | [`WooCommerce`] | WooCommerce | [`Secret::text`](crate::Secret::text) (HTML-entity-decoded) |
//! | [`WpWebhooks`] | WP Webhooks (body **not** signed) | [`Secret::text`](crate::Secret::text) + `date_created` |
//! | [`Paddle`] | Paddle Billing | [`Secret::text`](crate::Secret::text) (`pdl_ntfset_…`) |
//! | [`Linear`] | Linear | [`Secret::text`](crate::Secret::text) |
//! | [`Zoom`] | Zoom | [`Secret::text`](crate::Secret::text) (Secret Token) |
//! | [`Twitch`] | Twitch EventSub | [`Secret::text`](crate::Secret::text) |
//! | [`GitLab`] | GitLab secret token / signing token | [`Secret::text`](crate::Secret::text) / [`Secret::standard_webhooks`](crate::Secret::standard_webhooks) |
//! | [`Mailgun`] | Mailgun (event data **not** signed) | [`Secret::text`](crate::Secret::text) |
//! | [`Adyen`] | Adyen (notification items, `HmacSignature`) | [`Secret::hex`](crate::Secret::hex) |
//! | [`LemonSqueezy`] | Lemon Squeezy | [`Secret::text`](crate::Secret::text) |
//! | [`Typeform`] | Typeform | [`Secret::text`](crate::Secret::text) |
//! | [`hmac::Hmac`] | your own senders | any |
//! | [`Discord`] | Discord (Ed25519) | [`PublicKey::hex`](crate::PublicKey::hex) |
//! | [`Twilio`] | Twilio (URL-signed; all three variants) | [`Secret::text`](crate::Secret::text) (Auth Token / SharedKey) |
//! | [`Mandrill`] | Mailchimp Transactional (URL-signed) | [`Secret::text`](crate::Secret::text) |
//! | [`Square`] | Square (URL-signed) | [`Secret::text`](crate::Secret::text) |
//! | [`Unsigned`] | unsigned senders: Mailchimp Marketing, Zapier, Papertrail (token, Basic auth, networks) | [`Secret::text`](crate::Secret::text) |
//! | [`SendGrid`] | SendGrid Event Webhook (ECDSA P-256) | base64 SPKI, given to [`SendGrid::new`] |

pub mod hmac;
pub(crate) mod json;
pub(crate) mod kit;
#[macro_use]
mod body_mac;

mod discord;
mod github;
mod mandrill;
mod sendgrid;
mod shopify;
mod slack;
mod square;
mod standard;
mod stripe;
mod twilio;
mod unsigned;

pub use discord::Discord;
pub use github::GitHub;
pub use mandrill::Mandrill;
pub use sendgrid::SendGrid;
pub use shopify::Shopify;
pub use slack::Slack;
pub use square::Square;
pub use standard::{StandardWebhooks, Svix};
pub use stripe::Stripe;
pub use twilio::Twilio;
pub use unsigned::{Unsigned, UnsignedBuilder};

#[cfg(any(test, feature = "test-util"))]
pub(crate) use standard::sign_v1;

#[cfg(any(test, feature = "test-util"))]
pub(crate) use {
    mandrill::sign as sign_mandrill, square::sign as sign_square, twilio::sign as sign_twilio,
};
#[cfg(test)]
pub(crate) mod attacks;
mod intercom;
pub use intercom::Intercom;
mod lemonsqueezy;
mod typeform;
mod woocommerce;
pub use lemonsqueezy::LemonSqueezy;
pub use typeform::Typeform;
pub use woocommerce::WooCommerce;
mod paddle;
mod zoom;
pub use paddle::Paddle;
pub use zoom::Zoom;
mod linear;
mod twitch;
pub use linear::Linear;
pub use twitch::Twitch;
mod gitlab;
pub use gitlab::GitLab;
mod mailgun;
pub use mailgun::Mailgun;
mod adyen;
pub use adyen::Adyen;
mod wp_webhooks;
#[cfg(any(test, feature = "test-util"))]
pub(crate) use adyen::signing_string as adyen_signing_string;
pub use wp_webhooks::WpWebhooks;
#[cfg(any(test, feature = "test-util"))]
pub(crate) use wp_webhooks::signed_message as wp_webhooks_message;
