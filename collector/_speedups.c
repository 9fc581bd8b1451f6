/* Optional C accelerator for collector.capture: the capture plan of one kwargs shape, the
 * hook's last step (``seal``, ``ship``: a record queued as an untracked tuple) and owner check
 * (``thread_key``), each with a Python twin in collector.capture that tests compare it with, and
 * ``SendMethod``, Signal.send's replacement doing the hook's ``send`` prologue (tests compare it
 * with the Python ``send`` and with Django's).
 *
 * ``Plan(keys, kinds, extras, pk_value, cap, safe_str, missing, max_repr)`` is a callable that
 * does exactly what the Python code ``capture._make_plan`` generates for the same shape, for
 * shapes whose values are plain (None, bool, int, float), text, a model instance or a frozenset
 * (a save's ``update_fields``). Called with a send's kwargs dict, it returns
 * ``(keys, value, ...)``, or None when the dict does not have the shape. Python code it calls
 * (``pk_value``, ``cap``, ``safe_str``, a frozenset's handler) and Python-level attribute reads
 * (``instance.__dict__``) are the same as the generated code's, so both give equal results and
 * raise the same exceptions. Built by ``make venv`` (scripts/build_speedups.sh); without it the
 * generated Python code is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

enum { OP_PLAIN = 0, OP_STR = 1, OP_MODEL = 2, OP_FROZENSET = 3 };
#define MAX_PLAN_ITEMS 64 /* capture.MAX_ITEMS is 20 */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t n;
    PyObject *keys;     /* tuple of str: the shape's argument names, in order */
    PyObject *kinds;    /* tuple of types: each value's exact type */
    int *ops;           /* per value: OP_* */
    PyObject *extras;   /* tuple: per value, None or what its op needs (see plan_new) */
    PyObject *pk_value; /* capture._pk_value(value, pk) */
    PyObject *cap;      /* capture.cap(text, limit) */
    PyObject *safe_str; /* capture.safe_str(value, limit) */
    PyObject *missing;  /* capture._MISSING */
    PyObject *max_repr; /* int: MAX_REPR when the plan was made */
    Py_ssize_t max_repr_n;
    PyObject *limit150; /* int 150: safe_str's limit for a username */
    PyObject *zero;     /* int 0: a handler's depth */
} PlanObject;

static PyObject *dict_name; /* "__dict__" */
static PyObject *thread_key_name; /* "signal_monitor.thread_key" */
static PyObject *deque_append; /* collections.deque.append */
static int add_sendmethod(PyObject *module);

/* Untrack a tuple that can be in no reference cycle (every item an atom or an untracked tuple),
 * after the tuples it holds ``depth`` levels down (a nested send's parent ``(seq, index)``, a
 * Python plan's kwargs and their instances' parts), as the garbage collector itself would on
 * later passes; return the tuple. Done at once, a queued record's tuples never age into the
 * oldest generation (where only a full collection would untrack them) and never bring a full
 * collection nearer. */
static PyObject *
untracked(PyObject *tuple, int depth)
{
    if (tuple == NULL || !PyTuple_CheckExact(tuple) || !PyObject_GC_IsTracked(tuple))
        return tuple;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (depth > 0)
            untracked(item, depth - 1);
        if (PyObject_IS_GC(item) && (!PyTuple_CheckExact(item) || PyObject_GC_IsTracked(item)))
            return tuple;
    }
    PyObject_GC_UnTrack(tuple);
    return tuple;
}

static int
plan_traverse(PlanObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keys);
    Py_VISIT(self->kinds);
    Py_VISIT(self->extras);
    Py_VISIT(self->pk_value);
    Py_VISIT(self->cap);
    Py_VISIT(self->safe_str);
    Py_VISIT(self->missing);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
plan_clear(PlanObject *self)
{
    Py_CLEAR(self->keys);
    Py_CLEAR(self->kinds);
    Py_CLEAR(self->extras);
    Py_CLEAR(self->pk_value);
    Py_CLEAR(self->cap);
    Py_CLEAR(self->safe_str);
    Py_CLEAR(self->missing);
    Py_CLEAR(self->max_repr);
    Py_CLEAR(self->limit150);
    Py_CLEAR(self->zero);
    return 0;
}

static void
plan_dealloc(PlanObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    plan_clear(self);
    PyMem_Free(self->ops);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ``value.__dict__.get(key, dflt)`` as the generated code reads it: a new reference, or NULL. */
static PyObject *
instance_get(PyObject *value, PyObject *key, PyObject *dflt)
{
    PyObject *d = PyObject_GetAttr(value, dict_name);
    if (d == NULL)
        return NULL;
    PyObject *found;
    if (PyDict_CheckExact(d)) {
        found = PyDict_GetItemWithError(d, key);
        if (found == NULL && !PyErr_Occurred())
            found = dflt;
        Py_XINCREF(found);
    }
    else { /* not a plain dict: its own get(), as the generated code calls it */
        found = PyObject_CallMethod(d, "get", "OO", key, dflt);
    }
    Py_DECREF(d);
    return found;
}

/* A model instance as (label, pk) or (label, pk, username); extra = (label, attname, username),
 * read in the generated code's order: the pk, _pk_value when it is not None or an int, then the
 * username from __dict__ again. */
static PyObject *
capture_model(PlanObject *self, PyObject *value, PyObject *extra)
{
    PyObject *label = PyTuple_GET_ITEM(extra, 0);
    PyObject *attname = PyTuple_GET_ITEM(extra, 1);
    PyObject *username = PyTuple_GET_ITEM(extra, 2);
    PyObject *pk, *user = NULL, *result;
    if (attname == Py_None) {
        pk = Py_NewRef(Py_None);
    }
    else {
        pk = instance_get(value, attname, self->missing);
        if (pk == NULL)
            return NULL;
        if (!(pk == Py_None || PyLong_CheckExact(pk))) {
            PyObject *fixed = PyObject_CallFunctionObjArgs(self->pk_value, value, pk, NULL);
            Py_DECREF(pk);
            if (fixed == NULL)
                return NULL;
            pk = fixed;
        }
    }
    if (username != Py_None) {
        user = instance_get(value, username, Py_None);
        if (user == NULL) {
            Py_DECREF(pk);
            return NULL;
        }
    }
    if (user == NULL || user == Py_None) {
        result = PyTuple_Pack(2, label, pk);
    }
    else {
        PyObject *text = PyObject_CallFunctionObjArgs(self->safe_str, user, self->limit150, NULL);
        if (text == NULL) {
            Py_DECREF(user);
            Py_DECREF(pk);
            return NULL;
        }
        result = PyTuple_Pack(3, label, pk, text);
        Py_DECREF(text);
    }
    Py_XDECREF(user);
    Py_DECREF(pk);
    return untracked(result, 0);
}

/* update_fields: one plain field name as the tuple (0, name), which the garbage collector can
 * untrack (a queued frozenset stays tracked and ages into the oldest generation), else the
 * handler's capture; extra = (handler, light). */
static PyObject *
capture_frozenset(PlanObject *self, PyObject *value, PyObject *extra)
{
    if (PySet_GET_SIZE(value) == 1) {
        PyObject *it = PyObject_GetIter(value);
        if (it == NULL)
            return NULL;
        PyObject *field = PyIter_Next(it);
        Py_DECREF(it);
        if (field == NULL && PyErr_Occurred())
            return NULL;
        int plain = field != NULL && PyUnicode_CheckExact(field)
            && PyUnicode_GET_LENGTH(field) <= self->max_repr_n && PyUnicode_IS_ASCII(field);
        if (plain) {
            PyObject *fields = PyTuple_Pack(2, self->zero, field);
            Py_DECREF(field);
            return untracked(fields, 0);
        }
        Py_XDECREF(field);
    }
    return PyObject_CallFunctionObjArgs(
        PyTuple_GET_ITEM(extra, 0), value, self->zero, PyTuple_GET_ITEM(extra, 1), NULL);
}

/* Release the first ``n`` snapshot references. */
static void
release(PyObject **items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(items[i]);
}

static PyObject *
plan_call(PlanObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a plan takes one argument, the kwargs dict");
        return NULL;
    }
    if (self->keys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a cleared plan");
        return NULL;
    }
    PyObject *named = args[0];
    Py_ssize_t n = self->n;
    /* A send's kwargs are an exact dict; anything else goes to capture_kwargs (None). */
    if (!PyDict_CheckExact(named) || PyDict_GET_SIZE(named) != n)
        Py_RETURN_NONE;
    /* One snapshot of the items, as the generated code's ``(k0, v0), ... = n.items()``: the
     * Python called below (a key's __eq__, _pk_value, cap, safe_str) cannot change what is read. */
    PyObject *ks[MAX_PLAN_ITEMS], *vs[MAX_PLAN_ITEMS];
    PyObject *key, *value, *result = NULL;
    Py_ssize_t pos = 0, got = 0, i;
    while (PyDict_Next(named, &pos, &key, &value)) {
        if (got >= n)
            break;
        ks[got] = Py_NewRef(key);
        vs[got] = Py_NewRef(value);
        got++;
    }
    if (got != n || PyDict_GET_SIZE(named) != n)
        goto none;
    PyObject *keys = self->keys;
    int same = 1;
    for (i = 0; i < n; i++)
        if (ks[i] != PyTuple_GET_ITEM(keys, i))
            same = 0;
    if (!same) { /* the same (interned) key objects, or else equal keys: tuple(n) != _keys */
        for (i = 0; i < n; i++) {
            if (ks[i] == PyTuple_GET_ITEM(keys, i))
                continue;
            int eq = PyObject_RichCompareBool(ks[i], PyTuple_GET_ITEM(keys, i), Py_EQ);
            if (eq < 0)
                goto done;
            if (!eq)
                goto none;
        }
    }
    for (i = 0; i < n; i++)
        if ((PyObject *)Py_TYPE(vs[i]) != PyTuple_GET_ITEM(self->kinds, i))
            goto none;
    result = PyTuple_New(n + 1);
    if (result == NULL)
        goto done;
    PyTuple_SET_ITEM(result, 0, Py_NewRef(keys));
    for (i = 0; i < n; i++) {
        PyObject *out;
        value = vs[i];
        switch (self->ops[i]) {
        case OP_PLAIN:
            out = Py_NewRef(value);
            break;
        case OP_STR:
            if (PyUnicode_GET_LENGTH(value) <= self->max_repr_n)
                out = Py_NewRef(value);
            else
                out = PyObject_CallFunctionObjArgs(self->cap, value, self->max_repr, NULL);
            break;
        case OP_MODEL:
            out = capture_model(self, value, PyTuple_GET_ITEM(self->extras, i));
            break;
        default:
            out = capture_frozenset(self, value, PyTuple_GET_ITEM(self->extras, i));
            break;
        }
        if (out == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, i + 1, out);
    }
    untracked(result, 0);
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    release(ks, got);
    release(vs, got);
    return result;
}

static PyObject *
plan_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *keys, *kinds, *ops, *extras, *pk_value, *cap, *safe_str, *missing;
    Py_ssize_t max_repr;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Plan takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOOOn:Plan", &PyTuple_Type, &keys, &PyTuple_Type,
                          &kinds, &PyTuple_Type, &ops, &PyTuple_Type, &extras, &pk_value, &cap,
                          &safe_str, &missing, &max_repr))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(kinds) != n || PyTuple_GET_SIZE(ops) != n
        || PyTuple_GET_SIZE(extras) != n || n == 0 || n > MAX_PLAN_ITEMS) {
        PyErr_SetString(PyExc_ValueError,
                        "keys, kinds, ops and extras must have one item a key (1 to 64 keys)");
        return NULL;
    }
    PlanObject *self = (PlanObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->ops = PyMem_Calloc(n, sizeof(int));
    if (self->ops == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long op = PyLong_AsLong(PyTuple_GET_ITEM(ops, i));
        if (op == -1 && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        PyObject *extra = PyTuple_GET_ITEM(extras, i);
        PyObject *kind = PyTuple_GET_ITEM(kinds, i);
        /* The ops read their values with macros: text must be str, a frozenset a frozenset. */
        int ok = PyType_Check(kind) && (
            op == OP_PLAIN
            || (op == OP_STR && kind == (PyObject *)&PyUnicode_Type)
            || (op == OP_MODEL && PyTuple_Check(extra) && PyTuple_GET_SIZE(extra) == 3)
            || (op == OP_FROZENSET && kind == (PyObject *)&PyFrozenSet_Type
                && PyTuple_Check(extra) && PyTuple_GET_SIZE(extra) == 2));
        if (!ok) {
            Py_DECREF(self);
            PyErr_Format(PyExc_ValueError, "bad op or extra for value %zd", i);
            return NULL;
        }
        self->ops[i] = (int)op;
    }
    self->vectorcall = (vectorcallfunc)plan_call;
    self->n = n;
    self->keys = Py_NewRef(untracked(keys, 0));
    self->kinds = Py_NewRef(kinds);
    self->extras = Py_NewRef(extras);
    self->pk_value = Py_NewRef(pk_value);
    self->cap = Py_NewRef(cap);
    self->safe_str = Py_NewRef(safe_str);
    self->missing = Py_NewRef(missing);
    self->max_repr_n = max_repr;
    self->max_repr = PyLong_FromSsize_t(max_repr);
    self->limit150 = PyLong_FromLong(150);
    self->zero = PyLong_FromLong(0);
    if (self->max_repr == NULL || self->limit150 == NULL || self->zero == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMemberDef plan_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(PlanObject, vectorcall), Py_READONLY, NULL},
    {"keys", Py_T_OBJECT_EX, offsetof(PlanObject, keys), Py_READONLY, "the shape's argument names"},
    {NULL},
};

static PyType_Slot plan_slots[] = {
    {Py_tp_doc, "The capture plan of one kwargs shape (see collector.capture._make_plan)."},
    {Py_tp_new, plan_new},
    {Py_tp_dealloc, plan_dealloc},
    {Py_tp_traverse, plan_traverse},
    {Py_tp_clear, plan_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, plan_members},
    {0, NULL},
};

static PyType_Spec plan_spec = {
    .name = "collector._speedups.Plan",
    .basicsize = sizeof(PlanObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = plan_slots,
};

static int
speedups_exec(PyObject *module)
{
    dict_name = PyUnicode_InternFromString("__dict__");
    if (dict_name == NULL)
        return -1;
    thread_key_name = PyUnicode_InternFromString("signal_monitor.thread_key");
    if (thread_key_name == NULL)
        return -1;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL)
        return -1;
    PyObject *deque = PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque == NULL)
        return -1;
    deque_append = PyObject_GetAttrString(deque, "append");
    Py_DECREF(deque);
    if (deque_append == NULL)
        return -1;
    PyObject *type = PyType_FromModuleAndSpec(module, &plan_spec, NULL);
    if (type == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "Plan", type);
    Py_DECREF(type);
    if (rc < 0 || add_sendmethod(module) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "OP_PLAIN", OP_PLAIN) < 0
        || PyModule_AddIntConstant(module, "OP_STR", OP_STR) < 0
        || PyModule_AddIntConstant(module, "OP_MODEL", OP_MODEL) < 0
        || PyModule_AddIntConstant(module, "OP_FROZENSET", OP_FROZENSET) < 0 ? -1 : 0;
}

/* seal(record): a finished fast-path record (a list) as a tuple, untracked when it can be. */
static PyObject *
speedups_seal(PyObject *module, PyObject *record)
{
    if (!PyList_CheckExact(record)) {
        PyErr_SetString(PyExc_TypeError, "seal takes a list");
        return NULL;
    }
    return untracked(PyList_AsTuple(record), 3);
}

/* ship(queue, record, capacity): the fast path's last step in one call. Unless ``queue``
 * already holds ``capacity`` records, append the record sealed (as ``seal``) with
 * ``deque.append``; return None, or the queue's length before the append when it is a multiple
 * of 256 (the caller then checks that the writer runs), or -1 when the queue was full and
 * nothing was queued. */
static PyObject *
speedups_ship(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ship takes a queue, a record list and a capacity");
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[2]);
    if (capacity == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t queued = PyObject_Length(args[0]);
    if (queued < 0)
        return NULL;
    if (queued >= capacity)
        return PyLong_FromLong(-1);
    PyObject *sealed = untracked(PyList_AsTuple(args[1]), 3);
    if (sealed == NULL)
        return NULL;
    PyObject *call[2] = {args[0], sealed};
    PyObject *done = PyObject_Vectorcall(deque_append, call, 2, NULL);
    Py_DECREF(sealed);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    if (queued & 255)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(queued);
}

/* thread_key(): an object that names the running thread, the same one on every call in the
 * thread (kept in the thread state's dict, so it goes with the thread) and never another live
 * thread's; ``_thread.get_ident()`` without the int it allocates on every call. Never raises
 * when called right: without a dict to keep it in (no thread state, no memory), a new object,
 * which matches no cell, so the send takes the general path (with no memory even for that,
 * NotImplemented). */
static PyObject *
speedups_thread_key(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "thread_key takes no arguments");
        return NULL;
    }
    PyObject *dict = PyThreadState_GetDict();
    if (dict != NULL) {
        PyObject *found = PyDict_GetItemWithError(dict, thread_key_name);
        if (found != NULL)
            return Py_NewRef(found);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            dict = NULL;
        }
    }
    PyObject *key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (key == NULL) { /* no memory even for an object: one no live cell is likely to hold */
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    if (dict != NULL && PyDict_SetItem(dict, thread_key_name, key) < 0)
        PyErr_Clear();
    return key;
}

/* SendMethod(send, body, no_receivers, weak_key_dict): Signal.send's replacement, a method that
 * does the hook's ``send`` prologue (Django's own first steps) in C, without a Python frame:
 * ``if not self.receivers: return []``, the sender's entry in ``self.sender_receivers_cache``
 * (a dict, or a ``weakref.WeakKeyDictionary`` whose ``get`` is its own, read as that ``get``
 * does) and ``if cached is NO_RECEIVERS: return []``; then ``body(self, sender, cached, named)``,
 * the rest of ``send``, with the other keyword arguments in a new dict. An exception on the way
 * (an unhashable sender, one no weak reference can point at) is the one Django's send raises at
 * the same step. Calls it cannot answer exactly (arguments ``send`` would reject: no sender, two
 * of them, ``self=``, more positional ones, a keyword name of a str subclass: before anything is
 * read; a cache of another kind or with a patched ``get``: after ``receivers``, the cache and its
 * ``get`` were read once, attribute reads Django's own classes answer without side effects) go
 * to ``send`` itself, which starts again. A descriptor
 * like a function (bound to the signal it is read from); ``__name__``, ``__doc__``,
 * ``__wrapped__`` and the like are ``send``'s. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;          /* the hook's send(self, sender, **named) */
    PyObject *body;          /* the hook's _send(self, sender, cached, named) */
    PyObject *no_receivers;  /* django.dispatch.dispatcher.NO_RECEIVERS */
    PyObject *weak_key_dict; /* weakref.WeakKeyDictionary */
    PyObject *weak_key_dict_get; /* its get, as the type held it at construction */
} SendMethodObject;

static PyObject *receivers_name; /* "receivers" */
static PyObject *sender_name;    /* "sender" */
static PyObject *self_name;      /* "self" */
static PyObject *cache_name;     /* "sender_receivers_cache" */
static PyObject *data_name;      /* "data" */
static PyObject *get_name;       /* "get" */

/* 1 if the keyword name ``key`` (an exact str) is the interned ``name``. */
static int
same_name(PyObject *key, PyObject *name)
{
    if (key == name)
        return 1;
    if (PyUnicode_CHECK_INTERNED(key))
        return 0;
    return PyUnicode_Compare(key, name) == 0;
}

/* Set ``*entry`` to the sender's entry in ``cache`` as a new reference (None when it has none)
 * and return 1; return 0 (no error set) when only ``cache.get(sender)`` itself can tell (a cache
 * of another type, a patched ``get``), or -1 with the exception ``cache.get(sender)`` raises
 * (an unhashable sender, one no weak reference can point at). */
static int
cached_entry(SendMethodObject *m, PyObject *cache, PyObject *sender, PyObject **entry)
{
    PyObject *found;
    if (PyDict_CheckExact(cache)) {
        found = PyDict_GetItemWithError(cache, sender);
        if (found == NULL && PyErr_Occurred())
            return -1;
        *entry = Py_NewRef(found != NULL ? found : Py_None);
        return 1;
    }
    if (!Py_IS_TYPE(cache, (PyTypeObject *)m->weak_key_dict) || m->weak_key_dict_get == NULL)
        return 0;
    /* WeakKeyDictionary.get: ``return self.data.get(ref(key), default)``. Attributes are read
     * as Python reads them (the instance's own dict is never materialized, which would slow
     * Django's own reads of it), a ``get`` set on the instance (mock.patch) is obeyed. */
    PyObject *get = PyObject_GetAttr(cache, get_name);
    if (get == NULL)
        return -1;
    int own = PyMethod_Check(get) && PyMethod_GET_FUNCTION(get) == m->weak_key_dict_get
              && PyMethod_GET_SELF(get) == cache;
    Py_DECREF(get);
    if (!own)
        return 0;
    PyObject *data = PyObject_GetAttr(cache, data_name);
    if (data == NULL)
        return -1;
    if (!PyDict_CheckExact(data)) {
        Py_DECREF(data);
        return 0;
    }
    PyObject *ref = PyWeakref_NewRef(sender, NULL);
    if (ref == NULL) {
        Py_DECREF(data);
        return -1;
    }
    found = PyDict_GetItemWithError(data, ref);
    Py_XINCREF(found); /* borrowed from data, released below */
    Py_DECREF(ref);
    Py_DECREF(data);
    if (found == NULL && PyErr_Occurred())
        return -1;
    *entry = found != NULL ? found : Py_NewRef(Py_None);
    return 1;
}

/* Answer the call: 1 with ``*result`` set to ``body(self, sender, cached, named)``, to what the
 * prologue answers itself, or to NULL with the exception Django's send raises at the same step;
 * 0 (no error set) when the Python send should take the call. */
static int
send_prologue(SendMethodObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              PyObject **result)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    Py_ssize_t sender_at = -1; /* the sender's keyword index, if it came by keyword */
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_CheckExact(key) || same_name(key, self_name))
            return 0; /* a str subclass compares with its own __eq__ when Python binds it */
        if (same_name(key, sender_name))
            sender_at = i;
    }
    if (nargs == 2 ? sender_at >= 0 : (nargs != 1 || sender_at < 0))
        return 0;
    *result = NULL;
    PyObject *self = args[0];
    PyObject *sender = nargs == 2 ? args[1] : args[1 + sender_at];
    PyObject *receivers = PyObject_GetAttr(self, receivers_name);
    if (receivers == NULL)
        return 1;
    int heard = PyList_CheckExact(receivers) ? PyList_GET_SIZE(receivers) != 0
                                             : PyObject_IsTrue(receivers);
    Py_DECREF(receivers);
    if (heard <= 0) {
        if (heard == 0)
            *result = PyList_New(0);
        return 1;
    }
    PyObject *cache = PyObject_GetAttr(self, cache_name);
    if (cache == NULL)
        return 1;
    PyObject *cached;
    int found = cached_entry(m, cache, sender, &cached);
    if (found <= 0) { /* 0: the cache's own get answers, in the Python send, from the start */
        Py_DECREF(cache);
        return found < 0;
    }
    Py_DECREF(cache);
    if (cached == m->no_receivers) {
        Py_DECREF(cached);
        *result = PyList_New(0);
        return 1;
    }
    PyObject *named = PyDict_New();
    for (Py_ssize_t i = 0; named != NULL && i < nkw; i++) {
        if (i != sender_at
                && PyDict_SetItem(named, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            Py_CLEAR(named);
    }
    if (named != NULL) {
        PyObject *call[4] = {self, sender, cached, named};
        *result = PyObject_Vectorcall(m->body, call, 4, NULL);
        Py_DECREF(named);
    }
    Py_DECREF(cached);
    return 1;
}

static PyObject *
sendmethod_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SendMethodObject *m = (SendMethodObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *result;
    if (m->func == NULL || m->body == NULL) { /* cleared by the garbage collector at exit */
        PyErr_SetString(PyExc_RuntimeError, "Signal.send is no longer available");
        return NULL;
    }
    if (nargs >= 1) {
        if (send_prologue(m, args, nargs, kwnames, &result))
            return result;
    }
    return PyObject_Vectorcall(m->func, args, nargsf, kwnames);
}

static PyObject *
sendmethod_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *func, *body, *no_receivers, *weak_key_dict;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "SendMethod takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOOO:SendMethod", &func, &body, &no_receivers, &weak_key_dict))
        return NULL;
    if (!PyCallable_Check(func) || !PyCallable_Check(body) || !PyType_Check(weak_key_dict)) {
        PyErr_SetString(PyExc_TypeError,
                        "SendMethod takes send, its body, NO_RECEIVERS and WeakKeyDictionary");
        return NULL;
    }
    SendMethodObject *self = (SendMethodObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = sendmethod_vectorcall;
    self->func = Py_NewRef(func);
    self->body = Py_NewRef(body);
    self->no_receivers = Py_NewRef(no_receivers);
    self->weak_key_dict = Py_NewRef(weak_key_dict);
    self->weak_key_dict_get = Py_XNewRef(_PyType_Lookup((PyTypeObject *)weak_key_dict, get_name));
    return (PyObject *)self;
}

static int
sendmethod_traverse(SendMethodObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->func);
    Py_VISIT(self->body);
    Py_VISIT(self->no_receivers);
    Py_VISIT(self->weak_key_dict);
    Py_VISIT(self->weak_key_dict_get);
    return 0;
}

static int
sendmethod_clear(SendMethodObject *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->body);
    Py_CLEAR(self->no_receivers);
    Py_CLEAR(self->weak_key_dict);
    Py_CLEAR(self->weak_key_dict_get);
    return 0;
}

static void
sendmethod_dealloc(SendMethodObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    sendmethod_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* Read from a signal: bound to it, as a function would be; read from the class: itself. */
static PyObject *
sendmethod_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

/* Attributes it does not have itself (``__name__``, ``__doc__``, ``__wrapped__``...) are
 * ``func``'s. */
static PyObject *
sendmethod_getattro(PyObject *self, PyObject *name)
{
    PyObject *func = ((SendMethodObject *)self)->func;
    if (func == NULL) /* cleared by the garbage collector at exit */
        return PyObject_GenericGetAttr(self, name);
    if (PyUnicode_Check(name)
            && (PyUnicode_CompareWithASCIIString(name, "__doc__") == 0
                || PyUnicode_CompareWithASCIIString(name, "__module__") == 0
                || PyUnicode_CompareWithASCIIString(name, "__name__") == 0
                || PyUnicode_CompareWithASCIIString(name, "__qualname__") == 0))
        return PyObject_GetAttr(func, name);
    PyObject *found = PyObject_GenericGetAttr(self, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return found;
    PyErr_Clear();
    return PyObject_GetAttr(func, name);
}

static PyMemberDef sendmethod_members[] = {
    {"__func__", Py_T_OBJECT_EX, offsetof(SendMethodObject, func), Py_READONLY, "the Python send"},
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(SendMethodObject, vectorcall), Py_READONLY},
    {NULL},
};

static PyType_Slot sendmethod_slots[] = {
    {Py_tp_doc, "Signal.send's replacement; a send nobody hears is answered in C (see the source)."},
    {Py_tp_new, sendmethod_new},
    {Py_tp_dealloc, sendmethod_dealloc},
    {Py_tp_traverse, sendmethod_traverse},
    {Py_tp_clear, sendmethod_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, sendmethod_get},
    {Py_tp_getattro, sendmethod_getattro},
    {Py_tp_members, sendmethod_members},
    {0, NULL},
};

static PyType_Spec sendmethod_spec = {
    .name = "collector._speedups.SendMethod",
    .basicsize = sizeof(SendMethodObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
             | Py_TPFLAGS_METHOD_DESCRIPTOR | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sendmethod_slots,
};

static int
add_sendmethod(PyObject *module)
{
    receivers_name = PyUnicode_InternFromString("receivers");
    sender_name = PyUnicode_InternFromString("sender");
    self_name = PyUnicode_InternFromString("self");
    cache_name = PyUnicode_InternFromString("sender_receivers_cache");
    data_name = PyUnicode_InternFromString("data");
    get_name = PyUnicode_InternFromString("get");
    if (receivers_name == NULL || sender_name == NULL || self_name == NULL || cache_name == NULL
            || data_name == NULL || get_name == NULL)
        return -1;
    PyObject *type = PyType_FromModuleAndSpec(module, &sendmethod_spec, NULL);
    if (type == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "SendMethod", type);
    Py_DECREF(type);
    return rc;
}

static PyMethodDef speedups_methods[] = {
    {"seal", (PyCFunction)speedups_seal, METH_O,
     "Return a record list as a tuple, untracked by the garbage collector when it can be."},
    {"ship", (PyCFunction)(void (*)(void))speedups_ship, METH_FASTCALL,
     "Queue a record sealed unless the queue is full; None, a length to check at, or -1 (full)."},
    {"thread_key", (PyCFunction)(void (*)(void))speedups_thread_key, METH_FASTCALL,
     "Return the running thread's key object (one per thread, compared with 'is')."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    /* dict_name is shared by the process: a subinterpreter gets the Python plans */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector._speedups",
    .m_doc = "Optional C accelerator for collector.capture (capture plans) and the hook (seal, ship, thread_key, SendMethod).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
