//! The pprof profile format (`profile.proto` of github.com/google/pprof), as much of it as
//! a CPU profile needs, so that `go tool pprof` and other readers open what we write.

use std::collections::HashMap;

/// A profile.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each sample's values are.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The samples.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// Code locations.
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string, referred to by index; the first is empty.
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// When the profile was taken (ns since the epoch).
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// For how long (ns).
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// What one sample stands for.
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// How much of `period_type` one sample stands for.
    #[prost(int64, tag = "12")]
    pub period: i64,
}

/// A kind of value and its unit, as string indexes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    /// E.g. `cpu`.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// E.g. `nanoseconds`.
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// One stack and its values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The stack, innermost first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per sample type.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Labels (the thread's name).
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A label of a sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Its key (string index).
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// Its value (string index).
    #[prost(int64, tag = "2")]
    pub str: i64,
}

/// A code location: the functions inlined at it, innermost first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    /// Its id (from 1).
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its lines.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

/// A line of a location.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    /// The function (its id).
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// The line number.
    #[prost(int64, tag = "2")]
    pub line: i64,
}

/// A function.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    /// Its id (from 1).
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its demangled name (string index).
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// Its name as the system knows it (string index).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// Its source file (string index).
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

/// Builds a profile, interning strings, functions and locations.
#[derive(Default)]
pub struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<Vec<(u64, i64)>, u64>,
}

impl Builder {
    /// A CPU profile sampled `frequency` times a second.
    pub fn cpu(frequency: i64, time_nanos: i64, duration_nanos: i64) -> Self {
        let mut b = Builder::default();
        b.string("");
        let samples = ValueType {
            r#type: b.string("samples"),
            unit: b.string("count"),
        };
        let cpu = ValueType {
            r#type: b.string("cpu"),
            unit: b.string("nanoseconds"),
        };
        b.profile.sample_type = vec![samples, cpu.clone()];
        b.profile.period_type = Some(cpu);
        b.profile.period = 1_000_000_000_i64.checked_div(frequency).unwrap_or(0);
        b.profile.time_nanos = time_nanos;
        b.profile.duration_nanos = duration_nanos;
        b
    }

    /// The index of `s` in the string table.
    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(i) = self.strings.get(s) {
            return *i;
        }
        let i = i64::try_from(self.profile.string_table.len()).unwrap_or(i64::MAX);
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_owned(), file.to_owned());
        if let Some(id) = self.functions.get(&key) {
            return *id;
        }
        let id = u64::try_from(self.profile.function.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let (name, file) = (self.string(name), self.string(file));
        self.profile.function.push(Function {
            id,
            name,
            system_name: name,
            filename: file,
        });
        self.functions.insert(key, id);
        id
    }

    /// Adds a sample of `count` hits on `stack` (innermost frame first; each frame the
    /// functions inlined there, innermost first, as name, file and line) in `thread`.
    pub fn sample(&mut self, stack: &[Vec<(String, String, i64)>], thread: &str, count: i64) {
        let mut ids = Vec::with_capacity(stack.len());
        for frame in stack {
            let lines: Vec<(u64, i64)> = frame
                .iter()
                .map(|(name, file, line)| (self.function(name, file), *line))
                .collect();
            let id = match self.locations.get(&lines) {
                Some(id) => *id,
                None => {
                    let id = u64::try_from(self.profile.location.len())
                        .unwrap_or(u64::MAX)
                        .saturating_add(1);
                    self.profile.location.push(Location {
                        id,
                        line: lines
                            .iter()
                            .map(|(function_id, line)| Line {
                                function_id: *function_id,
                                line: *line,
                            })
                            .collect(),
                    });
                    self.locations.insert(lines, id);
                    id
                }
            };
            ids.push(id);
        }
        let label = Label {
            key: self.string("thread"),
            str: self.string(thread),
        };
        let period = self.profile.period;
        self.profile.sample.push(Sample {
            location_id: ids,
            value: vec![count, count.saturating_mul(period)],
            label: vec![label],
        });
    }

    /// The profile.
    pub fn finish(self) -> Profile {
        self.profile
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_profile_round_trips_with_shared_functions_and_locations() {
        let mut b = Builder::cpu(100, 1, 2);
        let main = ("main".to_owned(), "main.rs".to_owned(), 3);
        let work = ("work".to_owned(), "lib.rs".to_owned(), 9);
        b.sample(&[vec![work.clone()], vec![main.clone()]], "worker-1", 5);
        b.sample(&[vec![main]], "worker-2", 2);
        let p = b.finish();
        let back = Profile::decode(p.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.function.len(), 2);
        assert_eq!(p.location.len(), 2);
        assert_eq!(p.sample[0].location_id, vec![1, 2]);
        assert_eq!(p.sample[1].location_id, vec![2]);
        assert_eq!(p.sample[0].value, vec![5, 50_000_000]);
        assert_eq!(p.period, 10_000_000);
    }
}
