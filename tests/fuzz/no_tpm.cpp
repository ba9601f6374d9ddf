// Linked into the harnesses that reach the keyslots: no TPM is reachable from
// a fuzzer. This definition takes the place of libtss2-tctildr's, so a TCTI
// string that came from the fuzz input (an AddKeyslot option, a keyslot row
// of a damaged database) is never dlopen()ed, dialled or resolved, and the
// TPM code's "not reachable" path is what runs.

#include <tss2/tss2_tctildr.h>

extern "C" TSS2_RC Tss2_TctiLdr_Initialize(const char* /*name_conf*/, TSS2_TCTI_CONTEXT** context) {
    if (context != nullptr) {
        *context = nullptr;
    }
    return TSS2_TCTI_RC_NO_CONNECTION;
}
