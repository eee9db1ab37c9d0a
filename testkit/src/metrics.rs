//! One value off a daemon's Prometheus `/metrics` page.

/// The value of series `name` (the whole name, labels included: `skipped{reason="price"}`) in a
/// Prometheus text page; `None` when the page has no such series.
pub fn value(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of `name` on the daemon listening on 127.0.0.1:`port` (0 while it does not answer,
/// or has no such series yet).
pub async fn scrape(port: u16, name: &str) -> u64 {
    let Ok(page) = gridlease_fetch::Fetcher::devnet()
        .get(&format!("http://127.0.0.1:{port}/metrics"), None)
        .await
    else {
        return 0;
    };
    value(&String::from_utf8_lossy(&page), name).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_series_is_read_by_its_whole_name() {
        let page =
            "# TYPE bids counter\nbids_sent 3\nbids_sent_total 9\nskipped{reason=\"price\"} 2\n";
        assert_eq!(super::value(page, "bids_sent"), Some(3));
        assert_eq!(super::value(page, "skipped{reason=\"price\"}"), Some(2));
        assert_eq!(super::value(page, "bids"), None);
    }
}
