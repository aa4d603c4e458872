//! Amounts for people: integer minor units written with their currency's decimals
//! (`2000 EUR` → `20.00 EUR`, `2000 JPY` → `2000 JPY`). Arithmetic never leaves integers.

/// ISO 4217 currencies without a minor unit.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// `amount_minor` of `currency`, as `20.00 EUR`.
pub fn format(amount_minor: i64, currency: &str) -> String {
    let currency = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.as_str()) {
        return format!("{amount_minor} {currency}");
    }
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_written_with_their_currencys_decimals() {
        assert_eq!(format(2000, "eur"), "20.00 EUR");
        assert_eq!(format(5, "USD"), "0.05 USD");
        assert_eq!(format(-1999, "GBP"), "-19.99 GBP");
        assert_eq!(format(2000, "JPY"), "2000 JPY");
    }
}
