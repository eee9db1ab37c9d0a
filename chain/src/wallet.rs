//! Signer loading for every binary: an encrypted keystore (Web3 Secret Storage v3, what
//! `cast wallet new` writes) with its password from a prompt, a file or an environment variable,
//! or a raw private key from an environment variable only. Keys and passwords are never printed.

use std::{path::PathBuf, str::FromStr};

use alloy::signers::local::{LocalSignerError, PrivateKeySigner};

/// Where a keystore password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// Ask on the terminal (no echo).
    Prompt,
    /// First line of a file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl FromStr for Password {
    type Err = WalletError;

    /// `prompt`, `file:PATH` or `env:VAR`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "prompt" {
            Ok(Self::Prompt)
        } else if let Some(p) = s.strip_prefix("file:") {
            Ok(Self::File(p.into()))
        } else if let Some(v) = s.strip_prefix("env:") {
            Ok(Self::Env(v.into()))
        } else {
            Err(WalletError::Usage(
                "a password source is `prompt`, `file:PATH` or `env:VAR` (never the password itself)"
                    .into(),
            ))
        }
    }
}

/// Where the signing key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An encrypted keystore file.
    Keystore {
        /// The keystore JSON file.
        path: PathBuf,
        /// Its password.
        password: Password,
    },
    /// A hex private key in an environment variable (`env:VAR`).
    Env(String),
}

/// Why no signer could be loaded. Messages say what to do and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Misuse of the options.
    #[error("{0}")]
    Usage(String),
    /// The keystore file is missing or unreadable.
    #[error(
        "cannot read keystore {path}: {err} (create one with `cast wallet new` or use --private-key env:VAR)"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The password does not open the keystore.
    #[error("wrong password for keystore {0} (the keystore's MAC does not match)")]
    WrongPassword(PathBuf),
    /// The file is not a v3 keystore.
    #[error("{path} is not a Web3 Secret Storage (v3) keystore: {why}")]
    NotKeystore {
        /// The file.
        path: PathBuf,
        /// Parser message.
        why: String,
    },
    /// An environment variable the user named is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The password file cannot be read.
    #[error("cannot read password file {path}: {err}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// No terminal to prompt on.
    #[error("cannot prompt for the keystore password ({0}); use --password file:PATH or env:VAR")]
    Prompt(std::io::Error),
    /// The environment variable does not hold a private key.
    #[error("environment variable {0} does not hold a 32-byte hex private key")]
    BadKey(String),
}

impl Password {
    /// Read the password.
    pub fn read(&self, keystore: &std::path::Path) -> Result<String, WalletError> {
        match self {
            Self::Prompt => {
                rpassword::prompt_password(format!("password for {}: ", keystore.display()))
                    .map_err(WalletError::Prompt)
            }
            Self::File(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().next().unwrap_or_default().to_owned())
                .map_err(|err| WalletError::PasswordFile {
                    path: path.clone(),
                    err,
                }),
            Self::Env(var) => std::env::var(var).map_err(|_| WalletError::MissingEnv(var.clone())),
        }
    }
}

impl KeySource {
    /// For daemons: refuse a keystore or password file that anyone but its owner may read or
    /// write (`cast wallet new` writes keystores 0644; OFF-17). Nothing is read from them.
    pub fn check_private_files(&self) -> Result<(), WalletError> {
        let Self::Keystore { path, password } = self else {
            return Ok(());
        };
        let mut files = vec![path];
        if let Password::File(p) = password {
            files.push(p);
        }
        for f in files {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(f).map_err(|err| WalletError::Unreadable {
                    path: f.clone(),
                    err,
                })?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(WalletError::Usage(format!(
                        "{} is readable by others (mode {mode:04o}): run `chmod 0600 {}` first",
                        f.display(),
                        f.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Build from the usual flags: `--keystore PATH [--password SRC]` or `--private-key env:VAR`.
    pub fn from_flags(
        keystore: Option<PathBuf>,
        password: Option<Password>,
        private_key: Option<&str>,
    ) -> Result<Self, WalletError> {
        match (keystore, private_key) {
            (Some(_), Some(_)) => Err(WalletError::Usage(
                "give either --keystore or --private-key, not both".into(),
            )),
            (Some(path), None) => Ok(Self::Keystore {
                path,
                password: password.unwrap_or(Password::Prompt),
            }),
            (None, Some(k)) => match k.strip_prefix("env:") {
                Some(var) => Ok(Self::Env(var.to_owned())),
                None => Err(WalletError::Usage(
                    "--private-key takes env:VAR only: a key on the command line leaks into shell history and `ps`"
                        .into(),
                )),
            },
            (None, None) => Err(WalletError::Usage(
                "this command signs: give --keystore PATH (with --password prompt|file:PATH|env:VAR) or --private-key env:VAR"
                    .into(),
            )),
        }
    }

    /// Build from a daemon's `[wallet]` table: `keystore` (relative paths already resolved) with a
    /// `password` source, or `private_key = "env:VAR"`. On error, the dotted key to blame and why.
    pub fn from_config(
        keystore: Option<PathBuf>,
        password: Option<&str>,
        private_key: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        match (keystore, private_key) {
            (Some(path), None) => {
                let password = match password {
                    None => Password::Prompt,
                    Some(p) => p
                        .parse()
                        .map_err(|e: WalletError| ("wallet.password", e.to_string()))?,
                };
                Ok(Self::Keystore { path, password })
            }
            (None, Some(k)) => match k.strip_prefix("env:") {
                Some(var) => Ok(Self::Env(var.to_owned())),
                None => Err((
                    "wallet.private_key",
                    "takes env:VAR only: never write a key into a config file".into(),
                )),
            },
            _ => Err((
                "wallet",
                "give exactly one of keystore (with password) or private_key = \"env:VAR\"".into(),
            )),
        }
    }

    /// Load the signer.
    pub fn load(&self) -> Result<PrivateKeySigner, WalletError> {
        match self {
            Self::Keystore { path, password } => {
                std::fs::metadata(path).map_err(|err| WalletError::Unreadable {
                    path: path.clone(),
                    err,
                })?;
                let pw = password.read(path)?;
                PrivateKeySigner::decrypt_keystore(path, pw).map_err(|e| match e {
                    LocalSignerError::EthKeystoreError(ks) => {
                        let why = ks.to_string();
                        if why.contains("Mac") || why.contains("MAC") {
                            WalletError::WrongPassword(path.clone())
                        } else {
                            WalletError::NotKeystore {
                                path: path.clone(),
                                why,
                            }
                        }
                    }
                    other => WalletError::NotKeystore {
                        path: path.clone(),
                        why: other.to_string(),
                    },
                })
            }
            Self::Env(var) => {
                let raw = std::env::var(var).map_err(|_| WalletError::MissingEnv(var.clone()))?;
                raw.trim()
                    .parse::<PrivateKeySigner>()
                    .map_err(|_| WalletError::BadKey(var.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_round_trip_and_wrong_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = [7u8; 32];
        let (signer, _) = PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rand_for_tests(),
            key,
            "hunter2",
            Some("k.json"),
        )
        .expect("write keystore");
        let path = dir.path().join("k.json");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "hunter2\n").expect("write");
        let ok = KeySource::Keystore {
            path: path.clone(),
            password: Password::File(pwfile),
        };
        assert_eq!(ok.load().expect("opens").address(), signer.address());
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "nope").expect("write");
        let bad = KeySource::Keystore {
            path: path.clone(),
            password: Password::File(wrong),
        };
        let err = bad.load().expect_err("wrong password");
        assert!(matches!(err, WalletError::WrongPassword(_)), "{err}");
        assert!(!err.to_string().contains("nope"));
        let missing = KeySource::Keystore {
            path: dir.path().join("absent.json"),
            password: Password::Prompt,
        };
        assert!(matches!(
            missing.load(),
            Err(WalletError::Unreadable { .. })
        ));
    }

    #[test]
    fn raw_keys_only_from_env() {
        let err = KeySource::from_flags(None, None, Some("0x0101")).expect_err("refused");
        assert!(err.to_string().contains("env:VAR"));
        let src =
            KeySource::from_flags(None, None, Some("env:GRIDLEASE_TEST_UNSET_KEY")).expect("env");
        assert!(matches!(src.load(), Err(WalletError::MissingEnv(_))));
        assert!("hunter2".parse::<Password>().is_err());
    }

    fn rand_for_tests() -> impl rand08::RngCore + rand08::CryptoRng {
        rand08::thread_rng()
    }
}
