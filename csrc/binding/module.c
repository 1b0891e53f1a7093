/* The extension module `qode._C`: creates the module and adds the method
 * tables of every domain.  No algorithm lives here. */
#define QODE_BINDING_MAIN
#include "binding/binding.h"

static struct PyModuleDef qode_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "qode._C",
    .m_doc = "C core of qode: Runge-Kutta solvers, quantum circuits, interaction forces.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__C(void)
{
    import_array();
    PyObject *module = PyModule_Create(&qode_module);
    if (module == NULL)
        return NULL;
    PyMethodDef *tables[] = {
        qode_solver_methods,
        qode_social_methods,
        qode_quantum_methods,
        qode_field_methods,
    };
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        if (PyModule_AddFunctions(module, tables[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
