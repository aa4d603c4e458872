//! Classes and assignments, end to end on the real server with the scripted model: a teacher
//! makes a class and sets a role-play, learners do it and hand it in, the rubric is scored
//! (by the model, or estimated from the tutor's analysis when the model answers nonsense),
//! the teacher reads the conversation and overrides a grade, and the dashboard and gradebook
//! show the class. Another school sees none of it.

use crate::common::*;
use crate::schools::{Client, account, roles_id, school, server, server_every, token};
use serde_json::{Value, json};

/// Joins `who` to a school through invitation link `url`.
async fn join(who: &Client, url: &str) {
    let (status, joined) = who
        .call(
            "POST",
            &format!("/v1/invitations/{}/accept", token(url)),
            None,
        )
        .await;
    assert_eq!(status, 201, "{joined}");
}

/// A link inviting `role`s to `school`.
async fn link(admin: &Client, school: &str, role: &str) -> String {
    let (status, made) = admin
        .call(
            "POST",
            &format!("/v1/schools/{school}/invitations"),
            Some(json!({"role": role})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made["url"].as_str().unwrap().to_string()
}

/// Sends `text` in `conversation` and waits for the whole reply.
async fn say(who: &Client, conversation: &str, text: &str) -> Value {
    let (status, reply) = who
        .call(
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(json!({"text": text})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    reply
}

fn tomorrow() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 86_400_000
}

/// A school with a teacher, two learners (Ana, Bob) and a class of theirs taught by the
/// teacher at B1 in French.
struct Class {
    _server: Running,
    db: penpal::store::Db,
    school: String,
    class: String,
    admin: Client,
    teacher: Client,
    ana: Client,
    bob: Client,
}

async fn class(data: &std::path::Path, every: u64) -> Class {
    let (server, db, sink, ops) = server_every(data, every).await;
    let base = server.url("");
    let (id, admin) = school(&base, &ops, &sink, "Lycée Hugo", "roux@example.com", 5).await;
    let teacher = account(&base, "dupont@example.com").await;
    join(&teacher, &link(&admin, &id, "teacher").await).await;
    let learners = link(&admin, &id, "learner").await;
    let ana = account(&base, "ana@example.com").await;
    let bob = account(&base, "bob@example.com").await;
    join(&ana, &learners).await;
    join(&bob, &learners).await;
    let (status, made) = teacher
        .call(
            "POST",
            &format!("/v1/schools/{id}/classes"),
            Some(json!({"name": "Terminale B", "language": "fr", "level": "B1"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let class = made["id"].as_str().unwrap().to_string();
    let (_, members) = admin
        .call("GET", &format!("/v1/schools/{id}/members"), None)
        .await;
    for email in ["ana@example.com", "bob@example.com"] {
        let user = roles_id(&members, email);
        let (status, answer) = teacher
            .call(
                "PUT",
                &format!("/v1/classes/{class}/members/{user}"),
                Some(json!({"role": "learner"})),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    Class {
        _server: server,
        db,
        school: id,
        class,
        admin,
        teacher,
        ana,
        bob,
    }
}

/// Sets the class's restaurant role-play: two turns, due tomorrow.
async fn assignment(c: &Class) -> String {
    let (status, made) = c
        .teacher
        .call(
            "POST",
            &format!("/v1/classes/{}/assignments", c.class),
            Some(json!({"title": "Au restaurant", "mode": "role-play", "scenario": "restaurant",
                        "instructions": "Commandez un repas.", "min_turns": 2, "due_at": tomorrow()})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_string()
}

fn scores(grade: &Value) -> Vec<(String, u64, String)> {
    grade["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["criterion"].as_str().unwrap().to_string(),
                c["score"].as_u64().unwrap(),
                c["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn a_teacher_sets_a_role_play_learners_hand_it_in_and_the_rubric_is_scored() {
    let data = tempfile::tempdir().unwrap();
    let c = class(data.path(), 300).await;
    let (school, class) = (&c.school, &c.class);

    // Who may make and see classes.
    for (body, field) in [
        (
            json!({"name": " ", "language": "fr", "level": "B1"}),
            "name",
        ),
        (
            json!({"name": "X", "language": "xx", "level": "B1"}),
            "language",
        ),
    ] {
        let (status, err) = c
            .teacher
            .call("POST", &format!("/v1/schools/{school}/classes"), Some(body))
            .await;
        assert_eq!((status, &err["error"]["field"]), (422, &json!(field)));
    }
    let (status, _) = c
        .ana
        .call(
            "POST",
            &format!("/v1/schools/{school}/classes"),
            Some(json!({"name": "Mine", "language": "fr", "level": "A1"})),
        )
        .await;
    assert_eq!(status, 403, "learners do not make classes");
    let (_, listed) = c
        .ana
        .call("GET", &format!("/v1/schools/{school}/classes"), None)
        .await;
    assert_eq!(listed[0]["name"], "Terminale B", "{listed}");
    assert_eq!(
        (&listed[0]["role"], &listed[0]["learners"]),
        (&json!("learner"), &json!(2))
    );
    let (_, me) = c.admin.call("GET", "/v1/me", None).await;
    let admin_id = me["id"].as_str().unwrap();
    let (status, err) = c
        .teacher
        .call(
            "PUT",
            &format!("/v1/classes/{class}/members/{admin_id}"),
            Some(json!({"role": "learner"})),
        )
        .await;
    assert_eq!(status, 422, "an admin takes no learner's place: {err}");
    let (status, _) = c
        .teacher
        .call(
            "PUT",
            &format!("/v1/classes/{class}/members/nobody"),
            Some(json!({"role": "learner"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        c.ana
            .call("GET", &format!("/v1/classes/{class}/members"), None)
            .await
            .0,
        403
    );

    // The assignment: what a teacher gets wrong is named.
    let at = format!("/v1/classes/{class}/assignments");
    for (body, field) in [
        (
            json!({"title": "X", "mode": "role-play", "scenario": "moon-landing"}),
            "scenario",
        ),
        (
            json!({"title": "X", "personality": "nobody"}),
            "personality",
        ),
        (
            json!({"title": "X", "scenario": "restaurant", "min_turns": 0}),
            "min_turns",
        ),
        (
            json!({"title": "X", "scenario": "restaurant", "due_at": 1000}),
            "due_at",
        ),
        (json!({"title": "  ", "scenario": "restaurant"}), "title"),
    ] {
        let (status, err) = c.teacher.call("POST", &at, Some(body.clone())).await;
        assert_eq!(
            (status, &err["error"]["field"]),
            (422, &json!(field)),
            "{body}: {err}"
        );
    }
    assert_eq!(
        c.ana
            .call(
                "POST",
                &at,
                Some(json!({"title": "X", "scenario": "restaurant"}))
            )
            .await
            .0,
        403
    );
    let id = assignment(&c).await;
    let (_, view) = c
        .ana
        .call("GET", &format!("/v1/assignments/{id}"), None)
        .await;
    let rubric = view["assignment"]["rubric"].as_array().unwrap();
    assert_eq!(rubric.len(), 4);
    assert!(
        rubric[1]["bands"][3]
            .as_str()
            .unwrap()
            .starts_with("At B1:"),
        "{view}"
    );
    assert!(view["submission"].is_null());

    // Ana starts it: a conversation at the assignment's level; a second start is the same.
    assert_eq!(
        c.ana
            .call("POST", &format!("/v1/assignments/{id}/submit"), None)
            .await
            .0,
        404,
        "not started"
    );
    let (status, started) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/start"), None)
        .await;
    assert_eq!(status, 201, "{started}");
    let conversation = started["conversation"].as_str().unwrap().to_string();
    let (status, again) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/start"), None)
        .await;
    assert_eq!((status, &again["id"]), (200, &started["id"]));
    assert_eq!(
        c.teacher
            .call("POST", &format!("/v1/assignments/{id}/start"), None)
            .await
            .0,
        403
    );
    let (_, conv) = c
        .ana
        .call("GET", &format!("/v1/conversations/{conversation}"), None)
        .await;
    assert_eq!(
        (&conv["mode"], &conv["scenario"], &conv["level"]),
        (&json!("role-play"), &json!("restaurant"), &json!("B1"))
    );
    let (status, early) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/submit"), None)
        .await;
    assert_eq!(status, 409);
    assert!(
        early["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 more to go"),
        "{early}"
    );
    let first = say(
        &c.ana,
        &conversation,
        "Bonjour, je voudrais une table pour deux personnes.",
    )
    .await;
    assert!(
        first["reply"]["text"]
            .as_str()
            .unwrap()
            .contains("level B1"),
        "the assignment's level reaches the model, not Ana's own (none set): {first}"
    );
    say(
        &c.ana,
        &conversation,
        "Hier j'ai allé à le restaurant avec mon amis.",
    )
    .await;

    // Handed in and scored by the model against the rubric (the scripted model's sums:
    // two turns, three known errors, four long words, eight words a turn).
    let (status, handed) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/submit"), None)
        .await;
    assert_eq!(status, 200, "{handed}");
    assert_eq!(handed["status"], "graded", "{handed}");
    assert_eq!(handed["late"], false);
    assert_eq!(handed["turns"], 2);
    let grade = &handed["grade"];
    assert_eq!(
        scores(grade),
        [
            ("task_completion".into(), 2, "model".into()),
            ("accuracy".into(), 1, "model".into()),
            ("range".into(), 4, "model".into()),
            ("fluency".into(), 3, "model".into()),
        ]
    );
    assert_eq!((&grade["total"], &grade["max"]), (&json!(10), &json!(16)));
    assert_eq!(grade["needs_review"], false);
    assert!(handed.get("auto").is_none(), "{handed}");
    assert_eq!(
        c.ana
            .call("POST", &format!("/v1/assignments/{id}/submit"), None)
            .await
            .0,
        409,
        "handed in once"
    );
    // Chatting on after handing in changes nothing the teacher sees.
    say(&c.ana, &conversation, "Merci beaucoup, au revoir !").await;

    // Bob's model answers prose: every criterion is estimated from the analysis, flagged.
    let (_, started) = c
        .bob
        .call("POST", &format!("/v1/assignments/{id}/start"), None)
        .await;
    let bobs = started["conversation"].as_str().unwrap().to_string();
    say(
        &c.bob,
        &bobs,
        "Je va prendre le poulet. [[assessment:malformed]]",
    )
    .await;
    say(&c.bob, &bobs, "Et un verre de l'eau.").await;
    let (status, handed) = c
        .bob
        .call("POST", &format!("/v1/assignments/{id}/submit"), None)
        .await;
    assert_eq!(status, 200, "{handed}");
    let bob_grade = &handed["grade"];
    assert!(
        scores(bob_grade).iter().all(|(_, _, s)| s == "analysis"),
        "{bob_grade}"
    );
    assert_eq!(bob_grade["needs_review"], true);
    assert!(
        bob_grade["criteria"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("1 errors in"),
        "the tutor corrected « Je va »: {bob_grade}"
    );
    let bob_submission = handed["id"].as_str().unwrap().to_string();

    // The teacher reads the submissions and Ana's conversation as handed in.
    let (status, list) = c
        .teacher
        .call("GET", &format!("/v1/assignments/{id}/submissions"), None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2);
    let anas = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "ana@example.com")
        .unwrap()
        .clone();
    let ana_submission = anas["id"].as_str().unwrap().to_string();
    assert_eq!(anas["auto"]["total"], 10);
    let (status, detail) = c
        .teacher
        .call("GET", &format!("/v1/submissions/{ana_submission}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    let messages = detail["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "the two turns handed in, not the third");
    assert_eq!(
        messages[2]["text"],
        "Hier j'ai allé à le restaurant avec mon amis."
    );
    assert_eq!(
        c.bob
            .call("GET", &format!("/v1/submissions/{ana_submission}"), None)
            .await
            .0,
        404,
        "a classmate's submission is not Bob's to read"
    );
    assert_eq!(
        c.ana
            .call("GET", &format!("/v1/assignments/{id}/submissions"), None)
            .await
            .0,
        403
    );

    // The teacher overrides one criterion with a comment; penpal's score stays beside it.
    let grade_at = format!("/v1/submissions/{ana_submission}/grade");
    for (body, status) in [
        (json!({"scores": {"charm": 3}}), 400),
        (json!({"scores": {"accuracy": 5}}), 422),
        (json!({}), 422),
    ] {
        let (got, err) = c.teacher.call("PUT", &grade_at, Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {err}");
        assert!(err["error"]["message"].is_string(), "{err}");
    }
    assert_eq!(
        c.ana
            .call("PUT", &grade_at, Some(json!({"scores": {"accuracy": 4}})))
            .await
            .0,
        403,
        "no learner grades their own work"
    );
    let (status, regraded) = c
        .teacher
        .call(
            "PUT",
            &grade_at,
            Some(json!({"scores": {"accuracy": 2}, "comment": "Attention aux contractions : au, du."})),
        )
        .await;
    assert_eq!(status, 200, "{regraded}");
    assert_eq!(regraded["grade"]["total"], 11);
    assert_eq!(
        scores(&regraded["grade"])[1],
        ("accuracy".into(), 2, "teacher".into())
    );
    assert_eq!(regraded["auto"]["total"], 10);
    let (_, mine) = c
        .ana
        .call("GET", &format!("/v1/submissions/{ana_submission}"), None)
        .await;
    assert_eq!(mine["submission"]["grade"]["total"], 11);
    assert_eq!(
        mine["submission"]["grade"]["comment"],
        "Attention aux contractions : au, du."
    );
    assert!(mine["submission"].get("auto").is_none());
    let (status, _) = c
        .teacher
        .call(
            "PUT",
            &format!("/v1/submissions/{bob_submission}/grade"),
            Some(json!({"comment": "=HYPERLINK(\"http://evil\") bien"})),
        )
        .await;
    assert_eq!(status, 200);

    // Ana's to-do list shows it graded.
    let (_, todo) = c.ana.call("GET", "/v1/assignments", None).await;
    assert_eq!(todo[0]["class_name"], "Terminale B", "{todo}");
    assert_eq!(todo[0]["submission"]["grade"]["total"], 11);

    // The dashboard: activity, accuracy, errors by category, the assignment's progress.
    let (status, board) = c
        .teacher
        .call("GET", &format!("/v1/classes/{class}/dashboard"), None)
        .await;
    assert_eq!(status, 200, "{board}");
    let line = |email: &str| {
        board["learners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["email"] == email)
            .unwrap()
            .clone()
    };
    assert_eq!(line("ana@example.com")["turns_7d"], 3);
    assert_eq!(line("ana@example.com")["handed_in"], 1);
    assert_eq!(line("ana@example.com")["average"], json!(11.0 / 16.0));
    assert_eq!(line("bob@example.com")["turns_7d"], 2);
    assert_eq!(board["errors_by_category"][0]["category"], "grammar");
    assert_eq!(
        board["errors_by_category"][0]["errors"], 3,
        "the role-play points out two of Ana's three errors, and Bob's one: {board}"
    );
    let weeks = board["accuracy"].as_array().unwrap();
    assert_eq!(weeks.len(), 8);
    assert_eq!(weeks[7]["turns"], 5, "{board}");
    let work = &board["assignments"][0];
    assert_eq!(
        (&work["started"], &work["handed_in"], &work["needs_review"]),
        (&json!(2), &json!(2), &json!(0)),
        "Bob's grade was reviewed with the comment: {work}"
    );
    assert_eq!(
        c.ana
            .call("GET", &format!("/v1/classes/{class}/dashboard"), None)
            .await
            .0,
        403
    );

    // The gradebook: a row per learner, formulas neutralised.
    let resp = http()
        .get(c.teacher.base.clone() + &format!("/v1/classes/{class}/gradebook.csv"))
        .bearer_auth(&c.teacher.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("learner,email,assignment,status"));
    let ana_row = rows.iter().find(|r| r.contains("ana@example.com")).unwrap();
    assert!(ana_row.contains(",graded,"), "{ana_row}");
    assert!(
        ana_row.contains(",2,2,4,3,11,16,teacher,false,"),
        "{ana_row}"
    );
    let bob_row = rows.iter().find(|r| r.contains("bob@example.com")).unwrap();
    assert!(
        bob_row.ends_with("\"'=HYPERLINK(\"\"http://evil\"\") bien\""),
        "{bob_row}"
    );

    // Leaving the school takes Ana out of its classes; her grade stays in the gradebook's history.
    let (_, members) = c
        .admin
        .call("GET", &format!("/v1/schools/{school}/members"), None)
        .await;
    let ana_id = roles_id(&members, "ana@example.com");
    let (status, _) = c
        .admin
        .call(
            "DELETE",
            &format!("/v1/schools/{school}/members/{ana_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, members) = c
        .teacher
        .call("GET", &format!("/v1/classes/{class}/members"), None)
        .await;
    assert!(
        !members.to_string().contains("ana@example.com"),
        "{members}"
    );
    assert_eq!(
        c.ana
            .call("GET", &format!("/v1/classes/{class}"), None)
            .await
            .0,
        404
    );
}

#[actix_rt::test]
async fn a_hand_in_left_unscored_is_scored_and_a_failing_model_is_estimated() {
    let data = tempfile::tempdir().unwrap();
    let c = class(data.path(), 1).await;
    let id = assignment(&c).await;
    let (_, started) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/start"), None)
        .await;
    let conversation = started["conversation"].as_str().unwrap().to_string();
    let submission = started["id"].as_str().unwrap().to_string();
    say(
        &c.ana,
        &conversation,
        "Une table pour une personne, s'il vous plaît.",
    )
    .await;
    say(
        &c.ana,
        &conversation,
        "Je voudrais le poisson. [[assessment:500]]",
    )
    .await;
    let (status, handed) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/submit"), None)
        .await;
    assert_eq!(
        status, 200,
        "the hand-in stands when the model fails: {handed}"
    );
    assert_eq!(handed["status"], "graded");
    assert_eq!(handed["grade"]["needs_review"], true);

    // A crash between hand-in and grade: the submission is handed in with no grade.
    c.db.exec(
        "UPDATE type::record('submission', $id) SET status = 'submitted', grade = NONE, auto = NONE,
             submitted_at = time::unix(time::now()) * 1000 - 120000",
        json!({"id": submission}),
    )
    .await
    .unwrap();
    let graded = within(20, "the scorer grades the waiting submission", async {
        loop {
            let (_, mine) = c
                .ana
                .call("GET", &format!("/v1/submissions/{submission}"), None)
                .await;
            if mine["submission"]["status"] == "graded" {
                return mine;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(graded["submission"]["grade"]["max"], 16);
    assert_eq!(graded["submission"]["turns"], 2);

    // A teacher resets the submission: Ana starts afresh; her first conversation stays hers.
    let at = format!("/v1/submissions/{submission}");
    assert_eq!(c.ana.call("DELETE", &at, None).await.0, 403);
    assert_eq!(c.teacher.call("DELETE", &at, None).await.0, 204);
    let (_, todo) = c.ana.call("GET", "/v1/assignments", None).await;
    assert!(todo[0]["submission"].is_null(), "{todo}");
    let (status, again) = c
        .ana
        .call("POST", &format!("/v1/assignments/{id}/start"), None)
        .await;
    assert_eq!(status, 201);
    assert_ne!(again["conversation"], json!(conversation));
    let (status, _) = c
        .ana
        .call("GET", &format!("/v1/conversations/{conversation}"), None)
        .await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn another_school_reaches_no_class_assignment_or_submission() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let (a, admin_a) = school(&base, &ops, &sink, "School A", "a@example.com", 5).await;
    let (_b, admin_b) = school(&base, &ops, &sink, "School B", "b@example.com", 5).await;
    let learner = account(&base, "ana@example.com").await;
    join(&learner, &link(&admin_a, &a, "learner").await).await;
    let (_, class) = admin_a
        .call(
            "POST",
            &format!("/v1/schools/{a}/classes"),
            Some(json!({"name": "Secret class", "language": "fr", "level": "A2"})),
        )
        .await;
    let class = class["id"].as_str().unwrap().to_string();
    let (_, me) = learner.call("GET", "/v1/me", None).await;
    let ana = me["id"].as_str().unwrap().to_string();
    admin_a
        .call(
            "PUT",
            &format!("/v1/classes/{class}/members/{ana}"),
            Some(json!({"role": "learner"})),
        )
        .await;
    let (_, made) = admin_a
        .call(
            "POST",
            &format!("/v1/classes/{class}/assignments"),
            Some(json!({"title": "Secret task", "scenario": "restaurant", "min_turns": 1})),
        )
        .await;
    let assignment = made["id"].as_str().unwrap().to_string();
    let (_, started) = learner
        .call("POST", &format!("/v1/assignments/{assignment}/start"), None)
        .await;
    let submission = started["id"].as_str().unwrap().to_string();
    say(
        &learner,
        started["conversation"].as_str().unwrap(),
        "Bonjour !",
    )
    .await;
    learner
        .call(
            "POST",
            &format!("/v1/assignments/{assignment}/submit"),
            None,
        )
        .await;

    let routes = [
        ("GET", format!("/v1/schools/{a}/classes"), None),
        (
            "POST",
            format!("/v1/schools/{a}/classes"),
            Some(json!({"name": "X", "language": "fr", "level": "A1"})),
        ),
        ("GET", format!("/v1/classes/{class}"), None),
        (
            "PATCH",
            format!("/v1/classes/{class}"),
            Some(json!({"archived": true})),
        ),
        ("GET", format!("/v1/classes/{class}/members"), None),
        (
            "PUT",
            format!("/v1/classes/{class}/members/{ana}"),
            Some(json!({"role": "learner"})),
        ),
        ("DELETE", format!("/v1/classes/{class}/members/{ana}"), None),
        (
            "POST",
            format!("/v1/classes/{class}/assignments"),
            Some(json!({"title": "X", "scenario": "restaurant"})),
        ),
        ("GET", format!("/v1/classes/{class}/assignments"), None),
        ("GET", format!("/v1/classes/{class}/dashboard"), None),
        ("GET", format!("/v1/classes/{class}/gradebook.csv"), None),
        ("GET", format!("/v1/assignments/{assignment}"), None),
        (
            "PATCH",
            format!("/v1/assignments/{assignment}"),
            Some(json!({"title": "Hijacked"})),
        ),
        ("POST", format!("/v1/assignments/{assignment}/start"), None),
        ("POST", format!("/v1/assignments/{assignment}/submit"), None),
        (
            "GET",
            format!("/v1/assignments/{assignment}/submissions"),
            None,
        ),
        ("GET", format!("/v1/submissions/{submission}"), None),
        (
            "PUT",
            format!("/v1/submissions/{submission}/grade"),
            Some(json!({"scores": {"accuracy": 0}})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, answer) = admin_b.call(method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("Secret") && !text.contains("ana@example.com"),
            "{method} {path} leaks: {text}"
        );
    }
    let (_, todo) = admin_b.call("GET", "/v1/assignments", None).await;
    assert_eq!(todo, json!([]));
    // A is as it was.
    let (_, view) = admin_a
        .call("GET", &format!("/v1/classes/{class}"), None)
        .await;
    assert_eq!(
        (&view["name"], &view["archived"]),
        (&json!("Secret class"), &json!(false))
    );
    let (_, a_view) = admin_a
        .call("GET", &format!("/v1/assignments/{assignment}"), None)
        .await;
    assert_eq!(a_view["assignment"]["title"], "Secret task");
    let (_, subs) = admin_a
        .call(
            "GET",
            &format!("/v1/assignments/{assignment}/submissions"),
            None,
        )
        .await;
    assert_eq!(subs[0]["status"], "graded");
    assert_ne!(subs[0]["grade"]["criteria"][1]["score"], json!(0));
}
