//! `penpal:plugin@0.2`: the shared imports and all four worlds.

#![allow(missing_docs)]

wit_version!(
    "../wit/v0.2",
    tutor => "tutor",
    payment_provider => "payment-provider",
    notifier => "notifier",
    lms => "lms",
);
