//! check-config (the config road) and serve (the store road) build the same zones: the
//! integration fixtures' configs loaded both ways compile to the same fast-path tables —
//! answers, routing-policy variants and location cells — with every health check up and with
//! some down.

use dns_tests::fixtures::{multivalue_records, policy_config};
use dns_user::config::{Overrides, resolve};
use dns_user::control::Control;
use dns_user::fastpath::compile::compile;
use dns_user::health::HealthState;

fn both_roads(tag: &str, config: &str, down: &[&str]) {
    let dir = std::env::temp_dir().join(format!("dnsx-one-road-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dns.toml");
    std::fs::write(&path, config).unwrap();
    let overrides = Overrides {
        store: Some(dir.join("store.redb")),
        ..Overrides::default()
    };
    let settings = resolve(Some(&path), &overrides).unwrap();
    let direct = dns_user::control::import::catalog(&settings).unwrap();
    let served = Control::open(settings).unwrap().catalog();
    let health = HealthState(down.iter().map(|id| (id.to_string(), false)).collect());
    let (a, _) = compile(&direct, &health);
    let (b, _) = compile(&served, &health);
    assert!(!a.answers.is_empty(), "{tag}: nothing compiled");
    assert!(a == b, "{tag}: the two roads compile differently");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_policy_fixtures_compile_the_same_by_both_roads() {
    both_roads("policies", &policy_config(), &[]);
    both_roads("policies-down", &policy_config(), &["eu-primary"]);
}

#[test]
fn the_multivalue_fixture_compiles_the_same_by_both_roads() {
    let config = format!("{}{}", dns_tests::fixtures::ZONE_HEAD, multivalue_records());
    both_roads("multivalue", &config, &[]);
}
