"""What the hook captures of arguments costs the host nothing visible: no query, no error."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import deque
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from collector import capture
from tests.collector.conftest import Recorded

pytestmark = pytest.mark.django_db


def _noop(sender: Any, **kwargs: Any) -> None:
    """A receiver, so the send is recorded."""


def test_capturing_an_instance_runs_no_query(recorded: Recorded) -> None:
    """Permission.__str__ follows its content_type relation and a deferred username loads on
    access: capturing either must not add a query to the host's."""
    User.objects.create(username="ada")
    perm = Permission.objects.select_related(None).first()
    user = User.objects.only("id").get(username="ada")
    assert perm is not None and "username" in user.get_deferred_fields()
    post_save.connect(_noop, sender=Permission)
    post_save.connect(_noop, sender=User)
    try:
        with CaptureQueriesContext(connection) as queries:
            post_save.send(sender=Permission, instance=perm, created=False)
            post_save.send(sender=User, instance=user, created=False)
        assert queries.captured_queries == []
    finally:
        post_save.disconnect(_noop, sender=Permission)
        post_save.disconnect(_noop, sender=User)
    events = recorded(signal="django.db.models.signals.post_save")
    by_model = {e["kwargs"]["instance"]["model"]: e["kwargs"]["instance"] for e in events}
    assert by_model["auth.Permission"]["pk"] == perm.pk
    assert by_model["auth.User"] == {"model": "auth.User", "pk": user.pk}
    assert "username" in user.get_deferred_fields(), "the deferred field stayed deferred"


def test_a_loaded_username_is_kept() -> None:
    """A user's loaded username is captured (the dashboard shows who logged in)."""
    snap = capture.capture_kwargs(post_save, {"instance": User(pk=3, username="grace")})
    assert snap["instance"] == {"model": "auth.User", "pk": 3, "username": "grace"}


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("plain", 10, "plain"),
        ("x" * 12, 10, "x" * 10 + "… [2 more]"),
        ("caf\u00e9", 10, "caf\u00e9"),
        ("lone \ud800 surrogate", 100, "lone \\ud800 surrogate"),
    ],
)
def test_cap(text: str, limit: int, expected: str) -> None:
    """Capping cuts and says so; lone surrogates (not storable as UTF-8) are escaped."""
    assert capture.cap(text, limit) == expected


def test_odd_keys_are_captured_as_text() -> None:
    """Non-str, long or non-ASCII keys become capped text; plain keys stay as they are."""
    snap = capture.capture_kwargs(post_save, {"a": {1: "one", "k" * 150: 2, "\ud800": 3}})
    assert snap["a"] == {"1": "one", "k" * 100 + "… [50 more]": 2, "\\ud800": 3}


class _Hostile:
    """A value whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _Level(int):
    """An int subclass (as IntEnum members are)."""


class _Text(str):
    """A str subclass (as SafeString is)."""


_SHAPES: list[dict[str, Any]] = [
    {"instance": User(pk=3, username="grace"), "created": True, "raw": False, "using": "default"},
    {"instance": User(pk=4), "update_fields": frozenset({"last_login"}), "using": "default"},
    {"instance": User(pk=5, username="b" * 400), "update_fields": frozenset({"a", "b"})},
    {"instance": Permission(pk=None), "created": False},
    {"one": frozenset({1}), "accent": frozenset({"caf\u00e9"}), "long": frozenset({"x" * 400})},
    {"empty": frozenset(), "mixed": frozenset({1, "a"}), "none": None},
    {"text": "x" * 500, "short": "caf\u00e9", "lone": "a \ud800 b", "long_lone": "\ud800" * 400},
    {"nan": float("nan"), "inf": float("-inf"), "f": 1.5, "big": 10**30, "none": None},
    {"hostile": _Hostile(), "n": 1},
    {"level": _Level(3), "safe": _Text("<b>"), "nested": {"password": "s", "l": [1, (2, 3)]}},
    {"cls": User, "seq": [User(pk=6), {"k": "v"}], "t": (1, "two")},
    {f"k{i}": i for i in range(30)},
    {"odd key": 1, "k" * 150: 2},
    {"environ": {"PATH_INFO": "/a\ud800", "REQUEST_METHOD": "GET"}, "n": 1},
    {"scope": {"type": "http", "path": "/s", "method": "POST"}, "n": 2},
    {"environ": {"PATH_INFO": b"/b\xff", "method": "X" * 40}},
]


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"PATH_INFO": "/a", "REQUEST_METHOD": "GET", "x": object()},
         {"method": "GET", "path": "/a"}),
        ({"type": "http", "path": "/s", "method": "POST"}, {"method": "POST", "path": "/s"}),
        ({"type": "websocket", "path": "/ws"}, {"method": "", "path": "/ws"}),
        ({"PATH_INFO": b"/b\xff", "method": "M" * 20}, {"method": "M" * 16 + "… [4 more]",
                                                        "path": "/b\ufffd"}),
        ({"PATH_INFO": "p" * 301, "REQUEST_METHOD": 7}, {"method": "7",
                                                         "path": "p" * 300 + "… [1 more]"}),
    ],
)
def test_a_request_mapping_is_captured_as_its_method_and_path(
    mapping: dict[str, Any], expected: dict[str, str]
) -> None:
    """A WSGI environ or ASGI scope becomes method and path, capped, by either capture."""
    capture.reset_plans()
    assert capture.capture_kwargs(post_save, {"environ": mapping}) == {"environ": expected}
    got = capture.expand(capture.capture_compact(post_save, {"environ": mapping}))
    assert got == {"environ": expected}
    assert type(got["environ"]) is capture.Snapshot


@pytest.mark.parametrize("named", _SHAPES, ids=range(len(_SHAPES)))
def test_compact_capture_expands_to_what_capture_kwargs_gives(named: dict[str, Any]) -> None:
    """The hot path's compact capture (code made per signal and shape) means the same kwargs as
    capture_kwargs: on its first send, on later sends, and when the signal alternates shapes."""
    capture.reset_plans()
    expected = capture.capture_kwargs(post_save, named)
    for _ in range(3):
        got = capture.capture_compact(post_save, named)
        assert _same(capture.expand(got), expected)
    for other in _SHAPES:  # other shapes on the same signal, then this one again
        assert _same(capture.expand(capture.capture_compact(post_save, other)),
                     capture.capture_kwargs(post_save, other))
    assert _same(capture.expand(capture.capture_compact(post_save, named)), expected)


def _same(a: Any, b: Any) -> bool:
    """Compare captures, NaN equal to NaN (both are its text) and types checked."""
    return type(a) is type(b) and repr(a) == repr(b)


def test_compact_capture_holds_no_live_object_but_immutable_plain_values() -> None:
    """An instance becomes a tuple of plain values at send time; later changes do not show."""
    capture.reset_plans()
    user = User(pk=7, username="ada")
    got = capture.capture_compact(post_save, {"instance": user, "using": "default"})
    user.username, user.pk = "changed", 8
    assert capture.expand(got)["instance"] == {"model": "auth.User", "pk": 7, "username": "ada"}
    assert all(type(v) in (tuple, str, int, bool) for v in got[1:])


def test_light_signals_capture_no_username_in_either_form() -> None:
    """pre_init/post_init (sent per instance built) capture model and pk only."""
    from django.db.models.signals import post_init

    capture.reset_plans()
    named = {"instance": User(pk=9, username="ada")}
    expected = {"instance": {"model": "auth.User", "pk": 9}}
    assert capture.capture_kwargs(post_init, named) == expected
    assert capture.expand(capture.capture_compact(post_init, named)) == expected


class _Boom(BaseException):
    """Not an Exception: what a hostile attribute may raise."""


class _BadAttributes:
    """Every attribute lookup raises a BaseException."""

    def __getattr__(self, name: str) -> Any:
        raise _Boom(name)


class _EqualsAll(type):
    """A metaclass whose classes compare equal to anything."""

    def __eq__(cls, other: object) -> bool:
        return True

    __hash__ = type.__hash__


class _Weird(metaclass=_EqualsAll):
    """A mutable object whose class claims to equal int."""

    def __repr__(self) -> str:
        return "<Weird>"


def test_compact_capture_survives_a_base_exception_as_capture_kwargs_does() -> None:
    """A value raising a BaseException becomes a marker; the other arguments are kept."""
    capture.reset_plans()
    named = {"x": _BadAttributes(), "n": 1}
    expected = {"x": "<uncapturable _BadAttributes>", "n": 1}
    assert capture.capture_kwargs(post_save, named) == expected
    assert capture.expand(capture.capture_compact(post_save, named)) == expected


def test_compact_capture_keeps_no_live_object_of_a_type_claiming_equality() -> None:
    """Types are compared by identity: a class equal to everything is still captured as text."""
    capture.reset_plans()
    got = capture.capture_compact(post_save, {"w": _Weird()})
    assert capture.expand(got) == {"w": "<Weird>"}
    assert type(got[1]) is str


def test_compact_capture_keeps_the_send_order_of_keys() -> None:
    """The stored JSON lists arguments in the order they were sent, as capture_kwargs does."""
    capture.reset_plans()
    capture.capture_compact(post_save, {"a": 1, "b": 2})
    assert list(capture.expand(capture.capture_compact(post_save, {"b": 2, "a": 1}))) == ["b", "a"]
    built = "".join(["a", "b", "c"])  # equal to the plan's key, not the same object
    capture.capture_compact(post_save, {"abc": 1, "d": 2})
    assert capture.expand(capture.capture_compact(post_save, {built: 3, "d": 4})) == {
        "abc": 3, "d": 4}


def test_a_signal_with_many_shapes_makes_each_plan_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """post_init for instances of many models (a shape each) cycles through more shapes than a
    signal keeps at hand: plans are found again by shape, never generated twice."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.db.models.signals import post_init

    capture.reset_plans()
    made = []
    real = capture._make_plan
    monkeypatch.setattr(capture, "_make_plan", lambda *a: made.append(a) or real(*a))
    instances = [User(pk=1), Group(pk=2), Permission(pk=3), ContentType(pk=4), LogEntry(pk=5)]
    for _ in range(4):
        for instance in instances:
            got = capture.expand(capture.capture_compact(post_init, {"instance": instance}))
            assert got == {"instance": {"model": instance._meta.label, "pk": instance.pk}}
    assert len(made) == len(instances)


def test_subclassed_values_and_keys_are_captured_as_plain_values() -> None:
    """An int subclass (an enum member) and a str-subclass primary key are copied to plain
    values: the capture holds none of the host's objects."""
    capture.reset_plans()
    user = User(username="x")
    user.__dict__["id"] = _Text("abc")
    got = capture.capture_compact(post_save, {"level": _Level(3), "instance": user})
    _, level, instance = got
    assert type(level) is int and level == 3
    assert type(instance[1]) is str and instance[1] == "abc"


def test_a_plan_made_while_the_limits_change_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime.configure resets the plans; one being made at that moment (with the old MAX_REPR
    in its code) is used for nothing and forgotten."""
    capture.reset_plans()
    real = capture._make_plan

    def made_during_a_reset(*args: Any) -> Any:
        plan = real(*args)
        capture.reset_plans()  # as if another thread applied new settings meanwhile
        return plan

    monkeypatch.setattr(capture, "_make_plan", made_during_a_reset)
    named = {"text": "x" * 500}
    assert capture.expand(capture.capture_compact(post_save, named)) == capture.capture_kwargs(
        post_save, named)
    assert capture._by_shape == {} and capture._plans == {}


def test_expanders_take_names_as_data_and_are_made_once_per_names() -> None:
    """The writer's generated expanders: a name is never source text, one function per names,
    the same dict as the generic loop, and a record whose values do not fit still raises."""
    keys = ("a'}; import os #", "b\n)", "c")
    values = (float("inf"), "x \ud800", ("auth.User", 1, "ada"))
    got = capture.expand((keys, *values))
    assert _same(got, capture._expand_any((keys, *values)))
    assert list(got) == list(keys) and got[keys[0]] == "-inf"[1:]
    made, count = capture._expanders[keys], len(capture._expanders)
    equal_keys = tuple(k for k in keys)  # another tuple, equal: a later batch's, unpickled
    assert equal_keys is not keys
    assert capture.expand((equal_keys, 1, 2, 3)) == dict(zip(keys, (1, 2, 3), strict=True))
    assert capture._expanders[keys] is made and len(capture._expanders) == count
    with pytest.raises(ValueError):
        capture.expand((keys, 1, 2))


def test_a_compact_capture_holds_no_snapshot_and_expands_to_snapshots() -> None:
    """A request's environ and an instance travel as plain tuples (so a batch marshals) and come
    back as the Snapshots capture_kwargs gives."""
    import marshal

    from django.core.signals import request_started

    capture.reset_plans()
    environ = {"PATH_INFO": "/x", "REQUEST_METHOD": "POST", "wsgi.input": object()}
    for signal, named in ((request_started, {"environ": environ}),
                          (post_save, {"instance": User(pk=2, username="b"), "created": True})):
        got = capture.capture_compact(signal, named)
        assert marshal.loads(marshal.dumps(got)) == got
        expanded, expected = capture.expand(got), capture.capture_kwargs(signal, named)
        assert expanded == expected
        assert [type(v) for v in expanded.values()] == [type(v) for v in expected.values()]
    assert capture.expand(got)["instance"] == {"model": "auth.User", "pk": 2, "username": "b"}


def test_the_newest_plan_follows_the_shape_a_signal_sends_and_resets_with_the_plans() -> None:
    """capture.newest (which the hook calls first) holds the plan that matched last, and is
    cleared with the plans."""
    capture.reset_plans()
    one, other = {"n": 1}, {"s": "x", "n": 2}
    capture.capture_compact(post_save, one)
    first = capture.newest[id(post_save)]
    capture.capture_compact(post_save, other)
    assert capture.newest[id(post_save)] is not first
    capture.capture_compact(post_save, one)  # an older plan matches: it becomes the newest
    assert capture.newest[id(post_save)] is first
    capture.reset_plans()
    assert not capture.newest


@pytest.fixture(params=["c", "python"])
def plan_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a test with the C accelerator's plans and with the generated Python plans."""
    if request.param == "python":
        monkeypatch.setattr(capture, "CPlan", None)
    elif capture.CPlan is None:  # make venv builds it; CI must have it
        if os.environ.get("CI"):
            pytest.fail("collector._speedups is not built (scripts/build_speedups.sh)")
        pytest.skip("collector._speedups is not built (scripts/build_speedups.sh)")
    capture.reset_plans()
    yield request.param
    capture.reset_plans()


def _plan_shapes() -> list[dict[str, Any]]:
    """Shapes the C plans take (plain values, text, instances, frozensets), edge values."""
    partial = User(pk=11)
    del partial.__dict__["username"]  # not loaded: no username in the capture
    odd_pk = User(username="pk as text")
    odd_pk.__dict__["id"] = "12"  # a pk of an unusual type goes through _pk_value
    no_pk = User(username="nopk")
    del no_pk.__dict__["id"]  # the pk's attname missing: _pk_value reads value.pk
    return [
        *(s for s in _SHAPES if all(
            type(v) in (bool, int, float, str, frozenset, type(None)) or isinstance(v, User)
            for v in s.values()
        )),
        {"instance": partial, "raw": False, "using": "default", "update_fields": None},
        {"instance": odd_pk, "created": True},
        {"instance": no_pk},
        {"user": User(pk=13, username="\ud800" * 200), "text": "", "flag": False},
        {"a": frozenset({"x" * 300}), "b": frozenset({"x" * 301}), "c": frozenset({b"x"})},
    ]


@pytest.mark.parametrize("light", [False, True])
def test_the_c_plans_give_what_the_generated_python_plans_give(
    light: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every shape the accelerator takes, its plan returns what the Python code returns
    (values and their types), on the shape and on dicts that do not have it."""
    if capture.CPlan is None:
        if os.environ.get("CI"):
            pytest.fail("collector._speedups is not built (scripts/build_speedups.sh)")
        pytest.skip("collector._speedups is not built (scripts/build_speedups.sh)")
    shapes = _plan_shapes()
    for named in shapes:
        keys, kinds = tuple(named), [type(v) for v in named.values()]
        c_plan = capture._make_plan(keys, kinds, light)
        with monkeypatch.context() as patch:
            patch.setattr(capture, "CPlan", None)
            py_plan = capture._make_plan(keys, kinds, light)
        if py_plan is False:  # too many or unusual keys: capture_kwargs takes it, either way
            assert c_plan is False, named
            continue
        assert type(c_plan) is capture.CPlan, named
        for sent in [named, *shapes, dict(reversed(list(named.items()))), {**named, "x": 1},
                     {"".join(k): v for k, v in named.items()}]:  # equal keys, not identical
            assert _same(c_plan(sent), py_plan(sent)), (named, sent)


def test_a_pk_whose_text_raises_is_captured_alike_by_both_plans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pk of an unusual type whose str() raises a BaseException goes through _pk_value from
    either plan: its placeholder text, nothing raised into the send."""
    if capture.CPlan is None:
        pytest.skip("collector._speedups is not built")

    class _Pk:
        def __str__(self) -> str:
            raise _Boom("str")

        __repr__ = __str__

    user = User(username="x")
    user.__dict__["id"] = _Pk()
    c_plan = capture._make_plan(("instance",), [User], False)
    monkeypatch.setattr(capture, "CPlan", None)
    py_plan = capture._make_plan(("instance",), [User], False)
    assert type(c_plan) is not type(py_plan)
    got = _call(c_plan, {"instance": user})
    assert got == _call(py_plan, {"instance": user})
    assert got == (("instance",), ("auth.User", f"<unprintable {_Pk.__qualname__}>", "x"))


def _call(plan: Any, named: dict[str, Any]) -> Any:
    """Return a plan's result, or the type of what it raised."""
    try:
        return plan(named)
    except BaseException as exc:  # noqa: BLE001
        return type(exc)


@pytest.mark.parametrize("named", _SHAPES, ids=range(len(_SHAPES)))
def test_either_plan_kind_expands_to_what_capture_kwargs_gives(
    named: dict[str, Any], plan_kind: str
) -> None:
    """The compact capture, with C or with Python plans, means what capture_kwargs gives."""
    expected = capture.capture_kwargs(post_save, named)
    for _ in range(2):
        assert _same(capture.expand(capture.capture_compact(post_save, named)), expected)


def test_a_saves_capture_holds_nothing_the_garbage_collector_must_keep_tracking(
    plan_kind: str,
) -> None:
    """A save's compact capture (instance, update_fields of one name) is a tree of tuples and
    atoms, which the garbage collector untracks (the inner tuples in one collection, the outer in
    the next): queued records do not keep objects that age into the oldest generation. A
    frozenset kept there would stay tracked."""
    user = User(pk=7, username="kept")
    named = {"instance": user, "created": False, "update_fields": frozenset({"last_login"}),
             "raw": False, "using": "default"}  # fmt: skip
    for _ in range(2):  # the plan is made on the first capture and called on the second
        compact = capture.capture_compact(post_save, named)
    assert compact[3] == (0, "last_login")
    assert capture.expand(compact)["update_fields"] == ["last_login"]
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(compact)


def test_seal_gives_the_record_as_a_tuple_untracked_when_nothing_in_it_can_form_a_cycle() -> None:
    """``seal`` (C) turns a record list into an equal tuple; untracked, with the tuples it holds
    (a parent, the kwargs, an instance's parts), unless it holds a mutable container."""
    if capture.CPlan is None:
        pytest.skip("collector._speedups is not built (scripts/build_speedups.sh)")
    kwargs = (("instance", "update_fields"), ("auth.User", int("7")), (0, "last_login"))
    record = [None, "sig", "auth.User", "send", "/", (int("12"), 0), kwargs, None, None, 1.5]
    sealed = capture.seal(record)
    assert type(sealed) is tuple and sealed == tuple(record)
    assert not gc.is_tracked(sealed) and not gc.is_tracked(sealed[5])
    assert not gc.is_tracked(sealed[6]) and not gc.is_tracked(sealed[6][1])
    holding = capture.seal([None, "sig", {"a": 1}, ("x", [])])
    assert gc.is_tracked(holding) and gc.is_tracked(holding[3])  # a dict, a list: kept tracked
    with pytest.raises(TypeError):
        capture.seal(("not", "a", "list"))


def _ships() -> list[Any]:
    """The ``ship`` implementations to compare: Python's, and C's when it is built."""
    return [capture.py_ship] + ([] if capture.CPlan is None else [capture.ship])


@pytest.mark.parametrize("ship", _ships(), ids=["python", "c"][: len(_ships())])
def test_ship_queues_the_sealed_record_and_says_when_to_look_at_the_writer(ship: Any) -> None:
    """``ship`` appends the record as an equal tuple and answers None, except at every 256th
    length (that length, so the hook checks the writer) and when the queue is full (-1, nothing
    appended); the C one and the Python one answer alike."""
    queue: deque[Any] = deque()
    record = [None, "sig", "auth.User", "send", "/", (12, 0), None, None, None, 1.5]
    answers = [ship(queue, record, 600) for _ in range(601)]
    assert answers[0] == 0 and answers[256] == 256 and answers[512] == 512
    assert answers[600] == -1 and len(queue) == 600
    assert all(a is None for i, a in enumerate(answers[:600]) if i % 256)
    assert all(type(r) is tuple and r == tuple(record) for r in queue)
    assert ship(deque(), [], 0) == -1  # a capacity of nothing queues nothing
    if ship is not capture.py_ship:
        with pytest.raises(TypeError):
            ship(deque(), ("not", "a", "list"), 10)


@pytest.mark.parametrize(
    "key", [capture.py_thread_key] + ([] if capture.CPlan is None else [capture.thread_key]),
    ids=["python", "c"][: 1 + (capture.CPlan is not None)],
)
def test_thread_key_is_one_object_per_thread(key: Any) -> None:
    """``thread_key`` returns the same object on every call in a thread and another object in
    another thread, while both are alive."""
    here = key()
    assert key() is here
    if key is not capture.py_thread_key:
        with pytest.raises(TypeError):
            key(1)
    seen: list[object] = []
    gate = threading.Event()

    def other() -> None:
        seen.append(key())
        seen.append(key())
        gate.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        while len(seen) < 2:
            time.sleep(0.001)
        assert seen[0] is seen[1] and seen[0] is not here
    finally:
        gate.set()
        thread.join()


def test_the_hook_queues_a_saves_record_untracked(plan_kind: str, recorded: Recorded) -> None:
    """A save's queued record is a tuple; with the C accelerator's ``seal`` (and either plan kind)
    one the garbage collector does not track: it waits for the shipping thread without ageing
    into the oldest generation."""
    from collector import hook

    queued: list[Any] = []
    ship = hook._ship

    def spy(queue: Any, record: Any, capacity: int) -> Any:
        answer = ship(queue, record, capacity)
        queued.append(queue[-1])
        return answer

    post_save.connect(_noop, sender=User, weak=False)
    try:
        User.objects.create(username="first")  # the signal is named and its plan made
        recorded()
        hook._ship = spy
        try:
            User.objects.create(username="sealed")
        finally:
            hook._ship = ship
    finally:
        post_save.disconnect(_noop, sender=User)
    (record,) = [r for r in queued if r[1] == "django.db.models.signals.post_save"]
    assert type(record) is tuple
    assert gc.is_tracked(record) == (capture.seal is tuple)  # C seal: Python plans' kwargs too
    events = recorded(signal="django.db.models.signals.post_save")
    assert [e["kwargs"]["instance"]["username"] for e in events] == ["first", "sealed"]


def test_the_hook_uses_the_c_plan_when_it_is_built(plan_kind: str, recorded: Recorded) -> None:
    """A save's capture goes through the accelerator's plan when it is built (and the Python
    plan when it is not), and is recorded the same."""
    post_save.connect(_noop, sender=User, weak=False)
    try:
        User.objects.create(username="planned")
    finally:
        post_save.disconnect(_noop, sender=User)
    plan = capture.newest[id(post_save)]
    assert (type(plan) is capture.CPlan) == (plan_kind == "c")
    (event,) = recorded(signal="django.db.models.signals.post_save")
    assert event["kwargs"]["instance"]["username"] == "planned"


@pytest.mark.parametrize(
    ("kinds", "ops", "extras"),
    [
        ((int,), (1,), (None,)),  # text op on a non-str kind
        ((int,), (3,), ((None, False),)),  # frozenset op on a non-frozenset kind
        ((User,), (2,), (None,)),  # an instance without its (label, attname, username)
        ((frozenset,), (3,), (None,)),  # a frozenset without its handler
        ((int,), (9,), (None,)),  # no such op
        (("int",), (0,), (None,)),  # not a type
    ],
)
def test_a_c_plan_refuses_an_inconsistent_description(
    kinds: tuple[Any, ...], ops: tuple[int, ...], extras: tuple[Any, ...]
) -> None:
    """The C plan reads values with unchecked macros, so it is only made for consistent ops."""
    if capture.CPlan is None:
        pytest.skip("collector._speedups is not built")
    with pytest.raises(ValueError, match="bad op or extra"):
        capture.CPlan(("k",), kinds, ops, extras, capture._pk_value, capture.cap,
                      capture.safe_str, capture._MISSING, 300)  # fmt: skip


class _MeddlingKey(str):
    """A key equal to its text whose comparison changes the kwargs dict it is in."""

    target: dict[Any, Any] = {}

    def __eq__(self, other: object) -> bool:
        self.target["b"] = 12345  # the text value becomes an int, mid-capture
        self.target["c"] = frozenset({1})
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class _MeddlingName:
    """A username whose text changes the kwargs dict being captured."""

    target: dict[Any, Any] = {}

    def __str__(self) -> str:
        self.target["u"] = None
        self.target.pop("using", None)
        return "meddler"


@pytest.mark.parametrize("kind", ["c", "python"])
def test_a_plan_reads_one_snapshot_of_the_kwargs_even_when_python_code_changes_them(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python the capture calls (a key's __eq__, a username's __str__) may change the dict:
    both plans capture what was sent, never read a changed value with the wrong type."""
    if kind == "python":
        monkeypatch.setattr(capture, "CPlan", None)
    elif capture.CPlan is None:
        pytest.skip("collector._speedups is not built")
    plan = capture._make_plan(("a", "b", "c"), [int, str, frozenset], False)
    named: dict[Any, Any] = {_MeddlingKey("a"): 1, "b": "x" * 400, "c": frozenset({"f"})}
    _MeddlingKey.target = named
    got = plan(named)
    assert got == (("a", "b", "c"), 1, capture.cap("x" * 400, capture.MAX_REPR), (0, "f"))
    user = User(pk=1)
    user.__dict__["username"] = _MeddlingName()
    plan = capture._make_plan(("instance", "using", "u"), [User, str, int], False)
    named = {"instance": user, "using": "default", "u": 5}
    _MeddlingName.target = named
    assert plan(named) == (("instance", "using", "u"), ("auth.User", 1, "meddler"), "default", 5)
