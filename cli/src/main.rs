//! `jira-entra-guard`: the filter's decision core on the command line, for operators and CI.
//!
//! - `validate` compiles a plugin configuration (plain JSON, or taken out of an Envoy file) with
//!   the filter's own code and prints the filter's own error message;
//! - `check` decides one request (method, path, and a token or a client described by flags) the
//!   way the filter would, and says which rule or reason decided it;
//! - `schema` prints the configuration's JSON Schema.
//!
//! Exit codes: `validate` 0 accepted, 1 refused; `check` 0 allow, 1 deny; both 2 for usage
//! errors, unreadable files and (for `check`) a refused configuration.

mod check;
mod env;
mod keys;
mod output;
mod source;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use jira_entra_guard_core::config::{compile_policy, schema};
use jira_entra_guard_core::guid::Guid;
use jira_entra_guard_core::policy::{Policy, TenantIndex};

use check::{Identity, Request};
use env::{EnvOptions, Lookup};
use source::{Format, PluginConfig};

/// The filter's decision core on the command line.
#[derive(Parser)]
#[command(name = "jira-entra-guard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a plugin configuration as the filter does when Envoy loads it.
    ///
    /// Prints `ok: N tenants, M clients` (exit 0) or the filter's own log line
    /// `configuration refused: <field>: <problem>` (exit 1).
    Validate(ConfigArgs),
    /// Decide one request as the filter would: allow (exit 0) or deny (exit 1).
    Check(Box<CheckArgs>),
    /// Print the JSON Schema of the plugin configuration.
    Schema,
}

#[derive(Args)]
struct ConfigArgs {
    /// The plugin configuration (JSON), or an Envoy file (.yaml/.yml, or JSON with --envoy)
    /// whose jira-entra-guard Wasm filter carries it.
    config: PathBuf,
    /// Read CONFIG as an Envoy bootstrap file even when it is JSON.
    #[arg(long)]
    envoy: bool,
    /// Set an environment variable named by `upstream_authorization_env` (repeatable). For an
    /// Envoy file, only variables its vm_config declares are seen, as in the Wasm VM.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Use a placeholder for `upstream_authorization_env` variables that are not set, so a
    /// configuration can be validated without its secrets.
    #[arg(long)]
    ignore_missing_env: bool,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The request's method, as sent (case-sensitive).
    #[arg(long)]
    method: String,
    /// The request's path, as sent, with any query string.
    #[arg(long)]
    path: String,
    /// A request header 'Name: value' (repeatable); the filter reads Authorization, the
    /// method-override headers, Content-Type and Content-Encoding.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body, read from FILE: the projects of an issue create, bulk create, issue
    /// link or POST search are read from it (Content-Type defaults to application/json).
    #[arg(long, value_name = "FILE")]
    body: Option<std::path::PathBuf>,
    /// The bearer token (a compact JWS), or @FILE to read it from a file.
    #[arg(long, required_unless_present = "app_id", conflicts_with = "app_id")]
    token: Option<String>,
    /// A key-set (JWKS) file for every tenant, or TENANT_ID=FILE for one tenant (repeatable).
    #[arg(long, value_name = "[TENANT_ID=]FILE", requires = "token")]
    jwks: Vec<String>,
    /// Decode the token without checking its signature or claims; only the request checks and
    /// the ACL are applied.
    #[arg(long, requires = "token", conflicts_with = "jwks")]
    decode_only: bool,
    /// The time to check the token's exp/nbf/iat at, in seconds since the epoch (default: now).
    #[arg(
        long,
        value_name = "UNIX_SECONDS",
        requires = "token",
        allow_hyphen_values = true
    )]
    now: Option<i64>,
    /// Decide for this client application id instead of a token's.
    #[arg(long, value_name = "GUID")]
    app_id: Option<String>,
    /// The client's tenant (needed when the app id is configured in several tenants).
    #[arg(long, value_name = "GUID", requires = "app_id")]
    tenant: Option<String>,
    /// App roles the caller's token would carry, comma-separated.
    #[arg(long, value_name = "R1,R2", value_delimiter = ',', requires = "app_id")]
    roles: Vec<String>,
    /// How the client authenticated to Entra ID [default: certificate].
    #[arg(long, value_enum, requires = "app_id")]
    credential: Option<Credential>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `azpacr`/`appidacr` as a word.
#[derive(Clone, Copy, ValueEnum)]
enum Credential {
    /// A certificate (client assertion): `2`.
    Certificate,
    /// A client secret: `1`.
    Secret,
    /// A public client, no credential: `0`.
    Public,
}

impl Credential {
    fn claim(self) -> &'static str {
        match self {
            Credential::Certificate => "2",
            Credential::Secret => "1",
            Credential::Public => "0",
        }
    }
}

/// A failure that ends the command with a message and an exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Check(args) => run_check(&args),
        Command::Schema => print_schema(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn load(args: &ConfigArgs) -> Result<(Vec<PluginConfig>, EnvOptions), Failure> {
    let format = if args.envoy {
        Format::Envoy
    } else {
        Format::Auto
    };
    let configs = source::load(&args.config, format).map_err(Failure::usage)?;
    let options = EnvOptions::new(&args.env, args.ignore_missing_env).map_err(Failure::usage)?;
    Ok((configs, options))
}

fn compile(config: &PluginConfig, options: &EnvOptions) -> (Result<Policy, String>, Vec<String>) {
    let lookup = Lookup::new(options, config.vm_env.as_ref());
    let result = compile_policy(&config.json, &|name| lookup.get(name))
        .map_err(|e| format!("configuration refused: {e}"));
    (result, lookup.notes())
}

fn validate(args: &ConfigArgs) -> Result<u8, Failure> {
    let (configs, options) = load(args)?;
    let several = configs.len() > 1;
    let mut refused = false;
    for config in &configs {
        let prefix = if several {
            format!("{}: ", config.location)
        } else {
            String::new()
        };
        let (result, notes) = compile(config, &options);
        for note in notes {
            eprintln!("{prefix}{note}");
        }
        match result {
            Ok(policy) => println!(
                "{prefix}ok: {}, {}",
                count(policy.tenants().len(), "tenant"),
                count(policy.clients().len(), "client")
            ),
            Err(message) => {
                eprintln!("{prefix}{message}");
                refused = true;
            }
        }
    }
    Ok(u8::from(refused))
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn run_check(args: &CheckArgs) -> Result<u8, Failure> {
    let (configs, options) = load(&args.config)?;
    let config = match configs.as_slice() {
        [one] => one,
        several => {
            let places: Vec<&str> = several.iter().map(|c| c.location.as_str()).collect();
            return Err(Failure::usage(format!(
                "{}: {} jira-entra-guard filters found ({}); check needs a file with one",
                args.config.config.display(),
                several.len(),
                places.join(", ")
            )));
        }
    };
    let (result, notes) = compile(config, &options);
    for note in notes {
        eprintln!("{note}");
    }
    let policy = result.map_err(Failure::usage)?;

    let mut request = Request {
        method: args.method.clone(),
        path: args.path.clone(),
        ..Request::default()
    };
    for header in &args.headers {
        request.add_header(header).map_err(Failure::usage)?;
    }
    if let Some(file) = &args.body {
        let body = std::fs::read(file)
            .map_err(|e| Failure::usage(format!("--body {}: {e}", file.display())))?;
        if request.content_type.is_empty() {
            request.content_type.push("application/json".into());
        }
        request.body = Some(body);
    }
    let identity = identity(args, &policy, &mut request)?;
    let verdict = check::evaluate(&policy, &request, &identity).map_err(|message| Failure {
        code: 2,
        message: format!("internal error: {message}"),
    })?;
    for note in &verdict.notes {
        eprintln!("{note}");
    }
    if args.json {
        print!("{}", output::json(&verdict));
    } else {
        print!("{}", output::human(&verdict));
    }
    Ok(if verdict.allowed { 0 } else { 1 })
}

fn identity(args: &CheckArgs, policy: &Policy, request: &mut Request) -> Result<Identity, Failure> {
    if let Some(token) = &args.token {
        let token = read_token(token)?;
        request.authorization.push(format!("Bearer {token}"));
        let keys = if args.decode_only {
            None
        } else if args.jwks.is_empty() {
            return Err(Failure::usage(
                "--token needs --jwks FILE to verify it, or --decode-only to skip verification",
            ));
        } else {
            Some(keys::load(policy, &args.jwks).map_err(Failure::usage)?)
        };
        let now = match args.now {
            Some(now) => now,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                .unwrap_or_default(),
        };
        return Ok(Identity::Token { token, keys, now });
    }
    let app_id = args
        .app_id
        .clone()
        .ok_or_else(|| Failure::usage("give --token or --app-id"))?;
    let tenant = caller_tenant(policy, &app_id, args.tenant.as_deref())?;
    Ok(Identity::AppId {
        app_id,
        tenant,
        roles: args.roles.clone(),
        credential: args.credential.unwrap_or(Credential::Certificate).claim(),
    })
}

fn read_token(arg: &str) -> Result<String, Failure> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(Path::new(file))
            .map(|text| text.trim().to_owned())
            .map_err(|e| Failure::usage(format!("cannot read {file}: {e}"))),
        None => Ok(arg.trim().to_owned()),
    }
}

/// The tenant an `--app-id` caller belongs to: `--tenant`, else the only tenant, else the one
/// tenant that configures the app id.
fn caller_tenant(
    policy: &Policy,
    app_id: &str,
    tenant: Option<&str>,
) -> Result<TenantIndex, Failure> {
    if let Some(text) = tenant {
        let wanted = Guid::parse(text)
            .ok_or_else(|| Failure::usage(format!("--tenant {text:?} is not a GUID")))?;
        return policy
            .tenants()
            .iter()
            .position(|t| t.tenant_id == wanted)
            .map(TenantIndex)
            .ok_or_else(|| Failure::usage(format!("--tenant {text} is not a configured tenant")));
    }
    if Guid::parse(app_id).is_none() {
        return Err(Failure::usage(format!("--app-id {app_id:?} is not a GUID")));
    }
    let configured: Vec<TenantIndex> = policy
        .clients()
        .iter()
        .filter(|c| Some(c.app_id()) == Guid::parse(app_id))
        .map(|c| c.tenant())
        .collect();
    match configured.as_slice() {
        [] => Ok(TenantIndex(0)),
        [one] => Ok(*one),
        several => {
            let tenants: Vec<String> = several
                .iter()
                .map(|t| check::tenant_id(policy, *t))
                .collect();
            Err(Failure::usage(format!(
                "--app-id {app_id} is configured in several tenants ({}); pass --tenant",
                tenants.join(", ")
            )))
        }
    }
}

fn print_schema() -> Result<u8, Failure> {
    let text = serde_json::to_string_pretty(&schema()).map_err(|e| Failure {
        code: 2,
        message: format!("cannot print the schema: {e}"),
    })?;
    println!("{text}");
    Ok(0)
}
