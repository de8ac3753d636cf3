//! The definition's unit tests.

use super::*;

fn program(steps: serde_json::Value) -> Definition {
    serde_json::from_value(serde_json::json!({ "name": "Sleep", "steps": steps })).unwrap()
}

fn template() -> serde_json::Value {
    serde_json::json!({ "name": "checkin", "language": "en_US", "parameters": ["{first_name}"] })
}

#[test]
fn a_sound_program_has_no_problems_and_follows_its_links() {
    let p = program(serde_json::json!([
        { "id": "hello", "message": "Hi {first_name}, day {day}!", "template": template(),
          "buttons": [{ "id": "yes", "title": "Yes" }, { "id": "no", "title": "No" }],
          "branches": [{ "on": ["no"], "goto": "later" }] },
        { "id": "tips", "message": "Tip", "timing": { "after_minutes": 60 }, "next": "end" },
        { "id": "later", "message": "Tomorrow then", "timing": { "day": 2, "at": "09:00" }, "template": template() },
    ]));
    assert_eq!(p.problems(), Vec::<String>::new());
    assert_eq!(p.next_after("hello").unwrap().id, "tips");
    assert!(p.next_after("tips").is_none());
    assert_eq!(p.branch("hello", Some("no"), None).unwrap().id, "later");
    assert_eq!(p.branch("hello", None, Some(" NO ")).unwrap().id, "later");
    assert!(p.branch("hello", Some("yes"), Some("Yes")).is_none());
}

#[test]
fn problems_name_the_step_and_the_fix() {
    let p = program(serde_json::json!([
        { "id": "a", "message": "Hi {nickname}", "template": template(), "next": "end" },
        { "id": "b", "message": "Orphan", "timing": { "day": 2 } },
        { "id": "c", "message": "Late", "timing": { "after_minutes": 2880 }, "branches": [{ "on": ["x"], "goto": "zz" }] },
    ]));
    let problems = p.problems().join("\n");
    assert!(
        problems.contains("steps[0] (a).message: unknown variable {nickname}"),
        "{problems}"
    );
    assert!(
        problems.contains("steps[1] (b).timing: give both day and at"),
        "{problems}"
    );
    assert!(
        problems.contains("steps[2] (c).branches[0].goto: no step \"zz\""),
        "{problems}"
    );
    assert!(
        problems.contains("steps[2] (c).template: this step may be sent outside"),
        "{problems}"
    );
    let unreachable = program(serde_json::json!([
        { "id": "a", "message": "Hi", "template": template(), "next": "end" },
        { "id": "b", "message": "Never", "timing": { "after_minutes": 5 } },
    ]));
    assert_eq!(
        unreachable.problems(),
        vec!["steps (b): unreachable from the first step; link it with next or a branch, or remove it".to_string()]
    );
}

#[test]
fn silence_branches_and_milestones_are_checked() {
    let mut p = program(serde_json::json!([
        { "id": "ask", "message": "Did you move today?", "template": template(),
          "progress": { "key": "move", "kind": "yes_no" },
          "if_no_reply_after": 240, "no_reply_goto": "nudge", "next": "end" },
        { "id": "nudge", "message": "Just a yes or no is fine.", "next": "end" },
    ]));
    p.milestones = serde_json::from_value(serde_json::json!([
        { "key": "move", "streak": 7, "message": "{streak} days in a row, {first_name}!" },
    ]))
    .unwrap();
    assert_eq!(p.problems(), Vec::<String>::new());
    assert_eq!(p.steps[0].silence(), Some((240, "nudge")));
    p.steps[0].no_reply_goto = Some("ask".into());
    p.steps[0].if_no_reply_after = Some(2000);
    p.milestones[0].key = "sleep".into();
    p.milestones[0].total = Some(3);
    p.milestones[0].message = "{nickname}".into();
    let problems = p.problems().join("\n");
    assert!(
        problems.contains("no_reply_goto: a step cannot follow itself up"),
        "{problems}"
    );
    assert!(
        problems.contains("milestones[0].key: no step asks for progress \"sleep\""),
        "{problems}"
    );
    assert!(
        problems.contains("milestones[0]: give either streak"),
        "{problems}"
    );
    assert!(
        problems.contains("milestones[0].message: unknown variable {nickname}"),
        "{problems}"
    );
    p.steps[0].no_reply_goto = Some("nudge".into());
    let problems = p.problems().join("\n");
    assert!(
        problems.contains("no_reply_goto: step \"nudge\" is sent 2000 minutes"),
        "{problems}"
    );
    p.steps[0].no_reply_goto = None;
    assert!(
        p.problems()
            .join("\n")
            .contains("give both if_no_reply_after")
    );
}
