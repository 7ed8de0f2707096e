//! The tick timer and the clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use weir_sdk::prelude::*;

use super::{scripted, Phase};

#[test]
fn ticks_fire_every_period_and_the_clock_moves() {
    let ticks = Rc::new(RefCell::new(Vec::new()));
    let out = ticks.clone();
    let mut host = scripted(move |phase| {
        match phase {
            Phase::RequestHeaders(..) => time::set_tick_period(Duration::from_millis(1500)),
            Phase::Tick => {
                out.borrow_mut().push(time::now());
                if out.borrow().len() == 2 {
                    time::set_tick_period(Duration::ZERO);
                }
            }
            _ => {}
        }
        Action::Continue
    });
    assert_eq!(host.tick_period(), None);
    assert!(!host.tick());
    host.set_time(UNIX_EPOCH + Duration::from_secs(100));
    host.stream().send_request_headers(&[], true);
    assert_eq!(host.tick_period(), Some(Duration::from_millis(1500)));
    assert!(host.tick());
    assert!(host.tick());
    assert!(!host.tick(), "stopped");
    let expected = [UNIX_EPOCH + Duration::from_millis(101_500), UNIX_EPOCH + Duration::from_millis(103_000)];
    assert_eq!(*ticks.borrow(), expected);
}
