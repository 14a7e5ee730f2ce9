//! Crate-private macros.

/// The builder methods every HMAC provider shares: `new`, `add_secret`,
/// `tolerance` (when it has a timestamp), and a `Debug` that hides the keys.
macro_rules! hmac_provider {
    ($ty:ident, $alg:expr) => {
        impl $ty {
            /// A verifier with one secret and the provider's default settings.
            pub fn new(secret: $crate::Secret) -> Self {
                Self::from_keys($crate::providers::kit::KeySet::new($alg, &secret))
            }

            /// Accepts signatures made with `secret` too (rotation: keep the
            /// old and the new secret active until the old one stops matching).
            pub fn add_secret(mut self, secret: $crate::Secret) -> Self {
                self.keys.add(&secret);
                self
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("secrets", &"***")
                    .finish_non_exhaustive()
            }
        }
    };
    ($ty:ident, $alg:expr, tolerance) => {
        hmac_provider!($ty, $alg);

        impl $ty {
            /// How far the signed timestamp may be from now.
            pub fn tolerance(mut self, tolerance: $crate::Tolerance) -> Self {
                self.tolerance = tolerance;
                self
            }
        }
    };
}
