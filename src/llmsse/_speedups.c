/* Optional C versions of llmsse's per-chunk hot path (see llmsse/_chat.py).
 *
 * plain_text(chunk) is _chat._plain_text_dict() and text_event(chunk, add_text) is the
 * text format's framing of it (TextFormat._plain); output_text(event) and
 * output_text_event(event, add_text) are the same for a Responses API text delta
 * (_responses._output_text_dict). The same reads, the same checks, the same bytes. They
 * only ever decline (return None) where the Python versions decline, or more often:
 * whatever they decline goes to the Python code, which handles every case.
 * tests/test_fast_path.py runs every stream through both and compares.
 *
 * Why C: on CPython 3.10 and 3.11 an attribute read on a pydantic model goes through
 * BaseModel.__getattr__'s slow hook and is never specialised, and the two checks every
 * chunk needs beyond the tutorials' loop (provider extras, line breaks) cost a pure
 * Python loop ~35% more time than that loop. Here the reads skip the hook where that
 * changes nothing (plain_type()), without the interpreter around them.
 *
 * Built by hatch_build.py when a C compiler is there; llmsse works without it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *s_dict, *s_choices, *s_usage, *s_index, *s_finish_reason, *s_delta,
    *s_content, *s_refusal, *s_tool_calls, *s_extra, *s_reasoning_content, *s_reasoning,
    *s_getattribute, *s_type, *s_output_text_delta;
static PyObject *object_getattribute; /* object.__getattribute__ */

/* The last few plain types (see plain_type()) with the version tag they had then
   (CPython gives a type a new tag whenever it changes, and never reuses one). */
#define VETTED 8
static struct {
    PyTypeObject *type;
    unsigned int version;
} vetted[VETTED];
static unsigned int vetted_next;

/* Whether a type's instances are read in Python as PyObject_GenericGetAttr() and
   PyObject_GenericGetDict() read them (when the attribute is there): the type keeps
   object.__getattribute__ and CPython's own __dict__ descriptor. 1 yes, 0 no, -1 error.
   Pydantic's models only add a __getattr__ (a fallback for missing names), which makes
   CPython take its slot hook for every read: two more type lookups each, and for
   __dict__ a descriptor call, all skipped here. */
static int
plain_type(PyTypeObject *type)
{
    PyObject *found, *mro, *names;
    unsigned int version = type->tp_version_tag;
    Py_ssize_t i;
    int plain;

    if (version != 0) {
        for (i = 0; i < VETTED; i++) {
            if (vetted[i].type == type && vetted[i].version == version)
                return 1;
        }
    }
    found = PyObject_GetAttr((PyObject *)type, s_getattribute);
    if (found == NULL)
        return -1;
    plain = found == object_getattribute;
    Py_DECREF(found);
    /* The first class in the MRO that defines __dict__ must have CPython's descriptor. */
    mro = type->tp_mro;
    for (i = 0; plain && mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        names = PyObject_GetAttr(PyTuple_GET_ITEM(mro, i), s_dict);
        if (names == NULL)
            return -1;
        found = PyObject_GetItem(names, s_dict);
        Py_DECREF(names);
        if (found == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError))
                return -1;
            PyErr_Clear();
            continue;
        }
        plain = Py_IS_TYPE(found, &PyGetSetDescr_Type);
        Py_DECREF(found);
        break;
    }
    version = type->tp_version_tag; /* the lookup above may have assigned one */
    if (plain && version != 0) {
        vetted[vetted_next % VETTED].type = type;
        vetted[vetted_next % VETTED].version = version;
        vetted_next++;
    }
    return plain;
}

/* obj.__dict__ (a new reference) when it is a dict, else NULL (an exception may be set). */
static PyObject *
fields_of(PyObject *obj)
{
    PyObject *fields;
    int plain = plain_type(Py_TYPE(obj));

    if (plain < 0)
        return NULL;
    fields = plain ? PyObject_GenericGetDict(obj, NULL) : PyObject_GetAttr(obj, s_dict);
    if (fields != NULL && !PyDict_CheckExact(fields)) {
        Py_DECREF(fields);
        return NULL;
    }
    return fields;
}

/* A field's value (borrowed), or NULL when absent (an exception may be set). */
#define FIELD(fields, name) PyDict_GetItemWithError((fields), (name))

/* 1 when value is truthy or cannot say (an exception may be set), 0 when falsy. */
static int
truthy(PyObject *value)
{
    return value == NULL || PyObject_IsTrue(value) != 0;
}

/* Whether value is a str (not a subclass) with something in it. */
static int
nonempty_str(PyObject *value)
{
    if (value == NULL || !PyUnicode_CheckExact(value))
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(value) < 0) /* only strings of the long-gone Py_UNICODE API */
        return 0;
#endif
    return PyUnicode_GET_LENGTH(value) != 0;
}

/* Whether a delta's provider extras carry reasoning: _chat.reasoning_of(). 1 (or an
   exception set) when they may, 0 when they do not. */
static int
has_reasoning(PyObject *delta)
{
    PyObject *extra, *reasoning;
    int plain, result;

    plain = plain_type(Py_TYPE(delta));
    if (plain < 0)
        return 1;
    extra = plain ? PyObject_GenericGetAttr(delta, s_extra) : PyObject_GetAttr(delta, s_extra);
    if (extra == NULL)
        return 1;
    if (extra == Py_None) {
        Py_DECREF(extra);
        return 0;
    }
    if (!PyDict_CheckExact(extra)) { /* not what pydantic keeps there: decline */
        Py_DECREF(extra);
        return 1;
    }
    if (PyDict_GET_SIZE(extra) == 0) {
        Py_DECREF(extra);
        return 0;
    }
    /* reasoning_content wins; reasoning only when it is absent or None. */
    reasoning = PyDict_GetItemWithError(extra, s_reasoning_content);
    if (reasoning == NULL && PyErr_Occurred()) {
        Py_DECREF(extra);
        return 1;
    }
    if (reasoning == NULL || reasoning == Py_None) {
        reasoning = PyDict_GetItemWithError(extra, s_reasoning);
        if (reasoning == NULL) {
            Py_DECREF(extra);
            return PyErr_Occurred() != NULL;
        }
    }
    Py_INCREF(reasoning);
    Py_DECREF(extra); /* after the value is safe: a __bool__ could change the dict */
    result = truthy(reasoning);
    Py_DECREF(reasoning);
    return result;
}

/* The text of a chunk that carries nothing but text for choice 0 (a new reference), or
   NULL: declined, with or without an exception set. */
static PyObject *
plain(PyObject *chunk)
{
    PyObject *fields, *choices, *choice, *delta, *text;

    fields = fields_of(chunk);
    if (fields == NULL)
        return NULL;
    choices = FIELD(fields, s_choices);
    if (choices == NULL || !PyList_CheckExact(choices) || PyList_GET_SIZE(choices) == 0
        || FIELD(fields, s_usage) != Py_None) {
        Py_DECREF(fields);
        return NULL;
    }
    choice = PyList_GET_ITEM(choices, 0);
    Py_INCREF(choice);
    Py_DECREF(fields);

    fields = fields_of(choice);
    Py_DECREF(choice);
    if (fields == NULL)
        return NULL;
    if (truthy(FIELD(fields, s_index)) || FIELD(fields, s_finish_reason) != Py_None
        || (delta = FIELD(fields, s_delta)) == NULL) {
        Py_DECREF(fields);
        return NULL;
    }
    Py_INCREF(delta);
    Py_DECREF(fields);

    fields = fields_of(delta);
    if (fields == NULL) {
        Py_DECREF(delta);
        return NULL;
    }
    text = FIELD(fields, s_content);
    if (!nonempty_str(text)) {
        Py_DECREF(fields);
        Py_DECREF(delta);
        return NULL;
    }
    Py_INCREF(text);
    if (truthy(FIELD(fields, s_refusal)) || truthy(FIELD(fields, s_tool_calls))) {
        Py_DECREF(fields);
        Py_DECREF(delta);
        Py_DECREF(text);
        return NULL;
    }
    Py_DECREF(fields);
    if (has_reasoning(delta)) {
        Py_DECREF(delta);
        Py_DECREF(text);
        return NULL;
    }
    Py_DECREF(delta);
    return text;
}

/* None for a declined chunk: an Exception (an odd object, a missing field) only means
   "not plain text", as in the Python versions; anything else (KeyboardInterrupt)
   propagates. */
static PyObject *
declined(void)
{
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

static PyObject *
plain_text(PyObject *Py_UNUSED(module), PyObject *chunk)
{
    PyObject *text = plain(chunk);
    return text == NULL ? declined() : text;
}

/* The unnamed event of UTF-8 text that has line breaks: a data line per line (CRLF, CR
   and LF all end one, as encode_data() writes them), then the blank line. */
static PyObject *
data_lines(const char *data, Py_ssize_t size)
{
    Py_ssize_t i, length = 8;
    PyObject *event;
    char *p;

    for (i = 0; i < size; i++) {
        if (data[i] == '\r' || data[i] == '\n') {
            length += 7;
            if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
                i++;
        }
        else {
            length++;
        }
    }
    event = PyBytes_FromStringAndSize(NULL, length);
    if (event == NULL)
        return NULL;
    p = PyBytes_AS_STRING(event);
    memcpy(p, "data: ", 6);
    p += 6;
    for (i = 0; i < size; i++) {
        if (data[i] == '\r' || data[i] == '\n') {
            memcpy(p, "\ndata: ", 7);
            p += 7;
            if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
                i++;
        }
        else {
            *p++ = data[i];
        }
    }
    p[0] = '\n';
    p[1] = '\n';
    return event;
}

/* The unnamed event of an answer's text delta (steals text, which is not empty), after
   add_text(text) unless add_text is None; None when TextFormat must write it (a CR at
   the end may be half of a CRLF: it waits for the next delta; a lone surrogate is held or
   replaced); NULL on an error. */
static PyObject *
framed(PyObject *text, PyObject *add_text)
{
    PyObject *encoded = NULL, *event, *kept;
    const char *data;
    Py_ssize_t size;
    char *p;

    if (text == NULL)
        return declined();
    if (PyUnicode_IS_ASCII(text)) {
        data = (const char *)PyUnicode_1BYTE_DATA(text);
        size = PyUnicode_GET_LENGTH(text);
    }
    else {
        /* Not PyUnicode_AsUTF8AndSize(): it would keep a UTF-8 copy for as long as the
           text lives (with on_complete: the whole stream). */
        encoded = PyUnicode_AsUTF8String(text);
        if (encoded == NULL)
            goto decline;
        data = PyBytes_AS_STRING(encoded);
        size = PyBytes_GET_SIZE(encoded);
    }
    /* UTF-8 never has a CR or LF byte inside a multi-byte character. */
    if (data[size - 1] == '\r')
        goto decline;
    if (memchr(data, '\n', (size_t)size) == NULL && memchr(data, '\r', (size_t)size) == NULL) {
        event = PyBytes_FromStringAndSize(NULL, size + 8);
        if (event == NULL)
            goto fail;
        p = PyBytes_AS_STRING(event);
        memcpy(p, "data: ", 6);
        memcpy(p + 6, data, (size_t)size);
        p[size + 6] = '\n';
        p[size + 7] = '\n';
    }
    else {
        event = data_lines(data, size);
        if (event == NULL)
            goto fail;
    }
    Py_CLEAR(encoded);
    if (add_text != Py_None) {
        kept = PyObject_CallOneArg(add_text, text);
        if (kept == NULL) {
            Py_DECREF(event);
            goto fail;
        }
        Py_DECREF(kept);
    }
    Py_DECREF(text);
    return event;

decline:
    Py_XDECREF(encoded);
    Py_DECREF(text);
    return declined();
fail:
    Py_XDECREF(encoded);
    Py_DECREF(text);
    return NULL;
}

static int
two_arguments(const char *name, Py_ssize_t nargs)
{
    if (nargs == 2)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (%zd given)", name, nargs);
    return 0;
}

static PyObject *
text_event(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!two_arguments("text_event", nargs))
        return NULL;
    return framed(plain(args[0]), args[1]);
}

/* The text of a Responses API response.output_text.delta event (a new reference), or
   NULL: declined, with or without an exception set. _responses._output_text_dict(). */
static PyObject *
output(PyObject *event)
{
    PyObject *fields, *kind, *delta = NULL;

    fields = fields_of(event);
    if (fields == NULL)
        return NULL;
    kind = FIELD(fields, s_type);
    if (kind != NULL && PyUnicode_CheckExact(kind)
        && PyUnicode_Compare(kind, s_output_text_delta) == 0) {
        delta = FIELD(fields, s_delta);
        if (nonempty_str(delta))
            Py_INCREF(delta);
        else
            delta = NULL;
    }
    Py_DECREF(fields);
    return delta;
}

static PyObject *
output_text(PyObject *Py_UNUSED(module), PyObject *event)
{
    PyObject *text = output(event);
    return text == NULL ? declined() : text;
}

static PyObject *
output_text_event(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!two_arguments("output_text_event", nargs))
        return NULL;
    return framed(output(args[0]), args[1]);
}

PyDoc_STRVAR(plain_text_doc,
    "plain_text(chunk, /)\n--\n\n"
    "The text of a chunk that carries nothing but text for choice 0, else None.");

PyDoc_STRVAR(text_event_doc,
    "text_event(chunk, add_text, /)\n--\n\n"
    "The text format's event for a plain text chunk, else None (a CR at the end, a lone\n"
    "surrogate: the format's own code writes those).\n"
    "Calls add_text(text) first unless it is None.");

PyDoc_STRVAR(output_text_doc,
    "output_text(event, /)\n--\n\n"
    "The text of a Responses API response.output_text.delta event, else None.");

PyDoc_STRVAR(output_text_event_doc,
    "output_text_event(event, add_text, /)\n--\n\n"
    "text_event() for a Responses API response.output_text.delta event.");

static PyMethodDef speedups_methods[] = {
    {"plain_text", (PyCFunction)plain_text, METH_O, plain_text_doc},
    {"text_event", (PyCFunction)(void (*)(void))text_event, METH_FASTCALL, text_event_doc},
    {"output_text", (PyCFunction)output_text, METH_O, output_text_doc},
    {"output_text_event", (PyCFunction)(void (*)(void))output_text_event, METH_FASTCALL,
     output_text_event_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "llmsse._speedups",
    "C versions of llmsse's per-chunk hot path (optional).",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(var, s)                                                                 \
    if ((var = PyUnicode_InternFromString(s)) == NULL)                                 \
    return NULL
    INTERN(s_dict, "__dict__");
    INTERN(s_choices, "choices");
    INTERN(s_usage, "usage");
    INTERN(s_index, "index");
    INTERN(s_finish_reason, "finish_reason");
    INTERN(s_delta, "delta");
    INTERN(s_content, "content");
    INTERN(s_refusal, "refusal");
    INTERN(s_tool_calls, "tool_calls");
    INTERN(s_extra, "__pydantic_extra__");
    INTERN(s_reasoning_content, "reasoning_content");
    INTERN(s_reasoning, "reasoning");
    INTERN(s_getattribute, "__getattribute__");
    INTERN(s_type, "type");
    INTERN(s_output_text_delta, "response.output_text.delta");
#undef INTERN
    object_getattribute = PyObject_GetAttr((PyObject *)&PyBaseObject_Type, s_getattribute);
    if (object_getattribute == NULL)
        return NULL;
    return PyModule_Create(&speedups_module);
}
