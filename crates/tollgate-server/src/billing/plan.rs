//! A price plan, and what a period's units cost under it: integers in minor units of
//! the currency, never floats.

/// What one tier costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// ISO 4217 code.
    pub currency: String,
    /// Charged every period, in minor units.
    pub base_fee: i64,
    /// Units the base fee covers.
    pub included: i64,
    /// The price of `overage_per` units beyond them, in minor units.
    pub overage_price: i64,
    /// How many units `overage_price` buys (1 or 1,000, say).
    pub overage_per: i64,
}

/// A period's charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// Units beyond the included ones.
    pub overage_units: i64,
    /// Their price.
    pub overage_amount: i64,
    /// Base fee plus overage.
    pub amount: i64,
}

impl Plan {
    /// What `units` cost in a period: the base fee, and each started block of
    /// `overage_per` units beyond the included ones at `overage_price` (so that a part of
    /// a block is charged as a whole minor unit, never rounded away). None when the sum
    /// overflows.
    pub fn charge(&self, units: i64) -> Option<Charge> {
        let overage_units = units.checked_sub(self.included)?.max(0);
        let per = self.overage_per.max(1);
        let priced = overage_units.checked_mul(self.overage_price)?;
        let overage_amount = priced.checked_add(per.checked_sub(1)?)?.checked_div(per)?;
        Some(Charge {
            overage_units,
            overage_amount,
            amount: self.base_fee.checked_add(overage_amount)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(per: i64) -> Plan {
        Plan {
            currency: "EUR".into(),
            base_fee: 4_900,
            included: 100_000,
            overage_price: 200,
            overage_per: per,
        }
    }

    #[test]
    fn overage_is_charged_per_started_block() {
        let p = plan(1_000);
        assert_eq!(
            p.charge(99_000),
            Some(Charge {
                overage_units: 0,
                overage_amount: 0,
                amount: 4_900
            })
        );
        // 1,500 units over at 2.00 per 1,000: 3.00.
        assert_eq!(p.charge(101_500).unwrap().overage_amount, 300);
        // One unit over: a fraction of a cent, charged as one.
        assert_eq!(p.charge(100_001).unwrap().overage_amount, 1);
        assert_eq!(plan(1).charge(100_003).unwrap().amount, 4_900 + 600);
        assert_eq!(plan(1).charge(i64::MAX), None);
    }
}
