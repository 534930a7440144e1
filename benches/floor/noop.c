/* The do-nothing binary module of benches/floor.py: Ansible runs it as it runs lltune's
 * modules (a binary given the path of its arguments file) and it answers at once. */
#include <stdio.h>
int main(void) {
    fputs("{\"changed\": false, \"msg\": \"nothing done\"}\n", stdout);
    return 0;
}
