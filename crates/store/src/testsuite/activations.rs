//! Activation record checks: visibility, newest-first listing, filters, counts.

use super::{activation, unique_namespace};
use crate::{ActivationQuery, Store};
use whisk_core::{Activation, ActivationId};

/// Activation records: put/get, other namespaces, newest-first listing with name, time,
/// skip and limit filters, counts.
pub async fn activations(store: &dyn Store) {
    let ns = unique_namespace("act");
    let other = format!("{ns}x");
    let base = 1_700_000_000_000;
    // Oldest first: fib@0, pkg/fib@10, other@20, fib@30, pkg/fib@40.
    let records: Vec<Activation> = [
        (format!("{ns}/fib"), 0),
        (format!("{ns}/pkg/fib"), 10),
        (format!("{ns}/other"), 20),
        (format!("{ns}/fib"), 30),
        (format!("{ns}/pkg/fib"), 40),
    ]
    .into_iter()
    .map(|(path, offset)| activation(&ns, &path, base + offset))
    .collect();
    for a in &records {
        store.put_activation(a).await.unwrap();
    }
    let foreign = activation(&other, &format!("{other}/fib"), base + 25);
    store.put_activation(&foreign).await.unwrap();

    // Visible at once, only to its namespace.
    let got = store
        .get_activation(&ns, &records[0].activation_id)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&records[0]));
    assert!(store
        .get_activation(&other, &records[0].activation_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_activation(&ns, &foreign.activation_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_activation(&ns, &ActivationId::generate())
        .await
        .unwrap()
        .is_none());

    let all = store
        .list_activations(&ns, &query(None, None, None, 0, 100))
        .await
        .unwrap();
    assert_eq!(all[0], records[4], "full records are returned");
    // (name, since, upto, skip, limit) relative to `base` → starts listed, newest first.
    type Case = (
        Option<&'static str>,
        Option<i64>,
        Option<i64>,
        usize,
        usize,
        &'static [i64],
    );
    let cases: [Case; 12] = [
        (None, None, None, 0, 100, &[40, 30, 20, 10, 0]),
        (None, None, None, 1, 2, &[30, 20]),
        (None, None, None, 4, 2, &[0]),
        (None, None, None, 0, 0, &[]),
        // `fib` is any action named fib; `pkg/fib` only the packaged one.
        (Some("fib"), None, None, 0, 100, &[40, 30, 10, 0]),
        (Some("pkg/fib"), None, None, 0, 100, &[40, 10]),
        (Some("fib"), None, None, 1, 2, &[30, 10]),
        (Some("nope"), None, None, 0, 100, &[]),
        // Time bounds are inclusive.
        (None, Some(10), Some(30), 0, 100, &[30, 20, 10]),
        (None, Some(11), None, 0, 100, &[40, 30, 20]),
        (None, None, Some(29), 0, 100, &[20, 10, 0]),
        (Some("fib"), Some(5), Some(35), 0, 100, &[30, 10]),
    ];
    for (name, since, upto, skip, limit, expected) in cases {
        let q = query(
            name,
            since.map(|s| base + s),
            upto.map(|u| base + u),
            skip,
            limit,
        );
        let listed = store.list_activations(&ns, &q).await.unwrap();
        let starts: Vec<i64> = listed.iter().map(|a| a.start - base).collect();
        assert_eq!(starts, expected, "list {q:?}");
        // Counts ignore skip/limit.
        let matching = cases
            .iter()
            .find(|c| (c.0, c.1, c.2, c.3) == (name, since, upto, 0) && c.4 == 100);
        if let Some(all) = matching {
            assert_eq!(
                store.count_activations(&ns, &q).await.unwrap(),
                all.5.len(),
                "count {q:?}"
            );
        }
    }
    let inverted = query(None, Some(base + 30), Some(base + 10), 0, 100);
    assert!(store
        .list_activations(&ns, &inverted)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.count_activations(&ns, &inverted).await.unwrap(), 0);

    // Other namespaces.
    let everything = query(None, None, None, 0, 100);
    let theirs = store.list_activations(&other, &everything).await.unwrap();
    assert_eq!(theirs, std::slice::from_ref(&foreign));
    assert_eq!(
        store.count_activations(&other, &everything).await.unwrap(),
        1
    );
    let prefix = &ns[..ns.len() - 1];
    assert!(store
        .list_activations(prefix, &everything)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.count_activations(prefix, &everything).await.unwrap(),
        0
    );

    // Re-putting a record replaces it (and its place in the listing).
    let mut moved = records[0].clone();
    moved.start = base + 50;
    store.put_activation(&moved).await.unwrap();
    let got = store
        .get_activation(&ns, &moved.activation_id)
        .await
        .unwrap();
    assert_eq!(got, Some(moved));
    let starts: Vec<i64> = store
        .list_activations(&ns, &everything)
        .await
        .unwrap()
        .iter()
        .map(|a| a.start - base)
        .collect();
    assert_eq!(starts, [50, 40, 30, 20, 10]);
    assert_eq!(
        store
            .count_activations(&ns, &query(None, None, None, 3, 1))
            .await
            .unwrap(),
        5
    );
}

fn query(
    name: Option<&str>,
    since: Option<i64>,
    upto: Option<i64>,
    skip: usize,
    limit: usize,
) -> ActivationQuery {
    ActivationQuery {
        name: name.map(str::to_string),
        since,
        upto,
        skip,
        limit,
    }
}
