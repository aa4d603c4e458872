//! The tutoring room's part of a learner's data: conversations with their messages,
//! vocabulary, turn statistics and model usage.

use crate::store::personal::PersonalData;

/// The tutoring room's rows of a learner.
pub struct Tutoring;

impl PersonalData for Tutoring {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "conversations",
                "SELECT *, record::id(id) AS id,
                    (SELECT seq, role, text, created_at, status, corrections, vocabulary, debrief
                     FROM message:[record::id($parent.id), NONE]..=[record::id($parent.id), ..] ORDER BY seq) AS messages
                 FROM conversation WHERE user = $u ORDER BY created_at",
            ),
            (
                "vocabulary",
                "SELECT * OMIT id FROM vocab:[$u, NONE]..=[$u, ..] ORDER BY added_at",
            ),
            (
                "turn_stats",
                "SELECT * OMIT id FROM turn_stat:[$u, NONE]..=[$u, ..] ORDER BY at",
            ),
            (
                "usage",
                "SELECT * OMIT id FROM usage:[$u, NONE]..=[$u, ..] ORDER BY at",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "FOR $c IN (SELECT VALUE record::id(id) FROM conversation WHERE user = $u) {
             DELETE message:[$c, NONE]..=[$c, ..];
         };
         DELETE conversation WHERE user = $u;
         DELETE vocab:[$u, NONE]..=[$u, ..];
         DELETE turn_stat:[$u, NONE]..=[$u, ..];
         DELETE usage:[$u, NONE]..=[$u, ..];"
    }
}
