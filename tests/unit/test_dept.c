/*
 * test_dept.c: departments in the store (storage/dept.c, issue 23) on a fresh store: the tree
 * (sibling names unique case-insensitively, per parent; unknown parents; moves that would make a
 * cycle or a tree deeper than CF_DEPT_MAX_DEPTH refused; deletes of non-empty departments refused),
 * each user's departments (replaced whole, read through the metadata cache and seen at once after a
 * change), groups still listed beside departments in the same column family, and ACL entries naming
 * a department with the subdepartments flag (stored and read back, in the grants index too; an old
 * 18-byte entry decodes unchanged; a flags byte on anything but a department entry is corruption).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "tap.h"

static struct cf_key g_master;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct cf_dept mk(struct cf_store *s, const struct cf_id *T, const struct cf_dept *parent, const char *name)
{
    struct cf_dept d;
    CHECK_INT(cf_dept_create(s, T, parent != NULL ? &parent->id : NULL, name, CF_SOURCE_LOCAL, &d), CF_OK,
              "create %s", name);
    return d;
}

static void tree(struct cf_store *s, const struct cf_id *T)
{
    struct cf_dept top = mk(s, T, NULL, "Engineering"), be = mk(s, T, &top, "Backend"), st = mk(s, T, &be, "Storage");
    struct cf_dept sales = mk(s, T, NULL, "Sales"), d;
    CHECK(cf_id_equal(&st.parent, &be.id) && cf_id_is_zero(&top.parent), "parents as given");
    CHECK_INT(cf_dept_create(s, T, &top.id, "BACKEND", CF_SOURCE_LOCAL, &d), CF_EEXIST, "a sibling's name in capitals");
    CHECK_INT(cf_dept_create(s, T, NULL, "sales", CF_SOURCE_LOCAL, &d), CF_EEXIST, "a top-level name");
    struct cf_dept sbe = mk(s, T, &sales, "Backend");
    struct cf_id nobody;
    cf_id_new(&nobody);
    CHECK_INT(cf_dept_create(s, T, &nobody, "x", CF_SOURCE_LOCAL, &d), CF_ENOTFOUND, "an unknown parent");
    CHECK_INT(cf_dept_create(s, T, NULL, "", CF_SOURCE_LOCAL, &d), CF_EINVAL, "an empty name");
    char longname[CF_DEPT_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_INT(cf_dept_create(s, T, NULL, longname, CF_SOURCE_LOCAL, &d), CF_EINVAL, "a name too long");

    /* Groups share the column family: both lists stay whole. */
    struct cf_group g;
    CHECK_INT(cf_group_create(s, T, "Engineering", &g), CF_OK, "a group named like a department");
    struct cf_group *gs;
    struct cf_dept *ds;
    size_t ng = 0, nd = 0;
    CHECK_INT(cf_group_list(s, T, &gs, &ng), CF_OK, "groups listed beside departments");
    CHECK_INT(ng, 1, "one group");
    for (size_t i = 0; i < ng; i++)
        cf_group_clear(&gs[i]);
    free(gs);
    CHECK_INT(cf_dept_list(s, T, &ds, &nd), CF_OK, "departments listed");
    CHECK_INT(nd, 5, "five departments");
    for (size_t i = 0; i < nd; i++)
        cf_dept_clear(&ds[i]);
    free(ds);
    cf_group_clear(&g);

    /* Renames and moves. */
    CHECK_INT(cf_dept_rename(s, T, &be.id, "storage", &d), CF_OK, "a name its child has is free among its siblings");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_rename(s, T, &sbe.id, "SALES", &d), CF_OK, "a child may share its parent's name");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_move(s, T, &top.id, &st.id, &d), CF_EINVAL, "below its grandchild: a cycle");
    CHECK_INT(cf_dept_move(s, T, &top.id, &top.id, &d), CF_EINVAL, "below itself: a cycle");
    CHECK_INT(cf_dept_move(s, T, &top.id, &nobody, &d), CF_ENOTFOUND, "below an unknown parent");
    struct cf_id *up;
    size_t nup;
    CHECK_INT(cf_dept_ancestors(s, T, &st.id, &up, &nup), CF_OK, "ancestors");
    CHECK(nup == 2 && cf_id_equal(&up[0], &be.id) && cf_id_equal(&up[1], &top.id), "parent, then its parent");
    free(up);
    CHECK_INT(cf_dept_move(s, T, &st.id, NULL, &d), CF_OK, "to the top");
    CHECK(cf_id_is_zero(&d.parent), "at the top");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_ancestors(s, T, &st.id, &up, &nup), CF_OK, "ancestors after the move");
    CHECK_INT(nup, 0, "none at the top");
    free(up);
    struct cf_dept st2 = mk(s, T, NULL, "Storage2");
    CHECK_INT(cf_dept_rename(s, T, &st2.id, "STORAGE", &d), CF_EEXIST, "Storage is at the top now");
    CHECK_INT(cf_dept_move(s, T, &st.id, &top.id, &d), CF_EEXIST, "Engineering has a child named storage now");
    CHECK_INT(cf_dept_move(s, T, &st.id, &sales.id, &d), CF_OK, "under Sales");
    cf_dept_clear(&d);

    /* Depth: a chain of CF_DEPT_MAX_DEPTH levels, no deeper, and no subtree moved below it. */
    struct cf_dept chain[CF_DEPT_MAX_DEPTH];
    for (int i = 0; i < CF_DEPT_MAX_DEPTH; i++) {
        char name[16];
        snprintf(name, sizeof name, "L%d", i);
        chain[i] = mk(s, T, i == 0 ? NULL : &chain[i - 1], name);
    }
    CHECK_INT(cf_dept_create(s, T, &chain[CF_DEPT_MAX_DEPTH - 1].id, "deeper", CF_SOURCE_LOCAL, &d), CF_EINVAL,
              "one level too deep");
    CHECK_INT(cf_dept_move(s, T, &sales.id, &chain[CF_DEPT_MAX_DEPTH - 2].id, &d), CF_EINVAL,
              "a subtree of two levels moved too deep");
    CHECK_INT(cf_dept_move(s, T, &sales.id, &chain[CF_DEPT_MAX_DEPTH - 3].id, &d), CF_OK, "one level higher fits");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_move(s, T, &sales.id, NULL, &d), CF_OK, "and back to the top");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_move(s, T, &st2.id, &chain[CF_DEPT_MAX_DEPTH - 2].id, &d), CF_OK, "a leaf to the last level");
    cf_dept_clear(&d);
    CHECK_INT(cf_dept_delete(s, T, &chain[0].id), CF_EEXIST, "a department with sub-departments");
    CHECK_INT(cf_dept_delete(s, T, &st2.id), CF_OK, "a leaf");
    for (int i = CF_DEPT_MAX_DEPTH; i-- > 0;) {
        CHECK(cf_dept_delete(s, T, &chain[i].id) == CF_OK, "delete L%d", i);
        cf_dept_clear(&chain[i]);
    }
    CHECK_INT(cf_dept_get(s, T, &chain[0].id, &d), CF_ENOTFOUND, "gone");

    /* A user's departments, through the cache; delete refuses a department with members. */
    struct cf_id bob, carol, primary, *others, *members;
    size_t n, nm;
    cf_id_new(&bob);
    cf_id_new(&carol);
    CHECK_INT(cf_user_depts(s, T, &bob, &primary, &others, &n), CF_OK, "no departments yet");
    CHECK(cf_id_is_zero(&primary) && n == 0, "none");
    free(others);
    struct cf_id two[3] = {be.id, top.id, be.id};
    CHECK_INT(cf_user_set_depts(s, T, &bob, &top.id, two, 3), CF_OK, "primary and others");
    CHECK_INT(cf_user_depts(s, T, &bob, &primary, &others, &n), CF_OK, "read");
    CHECK(cf_id_equal(&primary, &top.id) && n == 1 && cf_id_equal(&others[0], &be.id), "the primary once, others once");
    free(others);
    CHECK_INT(cf_user_depts(s, T, &bob, &primary, &others, &n), CF_OK, "read again (cached)");
    free(others);
    struct cf_id bad[1];
    cf_id_new(&bad[0]);
    CHECK_INT(cf_user_set_depts(s, T, &bob, NULL, bad, 1), CF_ENOTFOUND, "an unknown department");
    CHECK_INT(cf_user_depts(s, T, &bob, &primary, &others, &n), CF_OK, "read after the refusal");
    CHECK(cf_id_equal(&primary, &top.id) && n == 1, "nothing changed");
    free(others);
    CHECK_INT(cf_user_set_depts(s, T, &carol, NULL, &be.id, 1), CF_OK, "carol in Backend");
    CHECK_INT(cf_dept_members(s, T, &be.id, &members, &nm), CF_OK, "members of Backend");
    CHECK_INT(nm, 2, "bob and carol");
    free(members);
    CHECK_INT(cf_dept_delete(s, T, &sales.id), CF_EEXIST, "Sales still has sub-departments");
    CHECK_INT(cf_user_set_depts(s, T, &bob, NULL, &sales.id, 1), CF_OK, "bob moves to Sales");
    CHECK_INT(cf_user_depts(s, T, &bob, &primary, &others, &n), CF_OK, "read at once");
    CHECK(cf_id_is_zero(&primary) && n == 1 && cf_id_equal(&others[0], &sales.id), "the move is seen at once");
    free(others);
    CHECK_INT(cf_dept_members(s, T, &top.id, &members, &nm), CF_OK, "members of Engineering");
    CHECK_INT(nm, 0, "nobody any more");
    free(members);
    struct cf_id many[CF_DEPT_MAX_PER_USER + 1];
    for (size_t i = 0; i < CF_DEPT_MAX_PER_USER + 1; i++)
        cf_id_new(&many[i]);
    CHECK_INT(cf_user_set_depts(s, T, &bob, NULL, many, CF_DEPT_MAX_PER_USER + 1), CF_EINVAL, "too many");
    CHECK_INT(cf_user_set_depts(s, T, &bob, NULL, NULL, 0), CF_OK, "bob leaves");
    CHECK_INT(cf_user_set_depts(s, T, &carol, NULL, NULL, 0), CF_OK, "carol leaves");
    CHECK_INT(cf_dept_delete(s, T, &be.id), CF_OK, "an emptied Backend");
    CHECK_INT(cf_dept_delete(s, T, &be.id), CF_ENOTFOUND, "deleted twice");
    CHECK_INT(cf_user_set_depts(s, T, &carol, &be.id, NULL, 0), CF_ENOTFOUND, "joining a deleted department");
    CHECK_INT(cf_dept_create(s, T, &top.id, "Storage", CF_SOURCE_LOCAL, &d), CF_OK, "its name is free again");
    CHECK(!cf_id_equal(&d.id, &be.id), "another id");
    cf_dept_clear(&d);
    cf_dept_clear(&top);
    cf_dept_clear(&be);
    cf_dept_clear(&st);
    cf_dept_clear(&sales);
    cf_dept_clear(&sbe);
    cf_dept_clear(&st2);
}

static void acl(struct cf_store *s, const struct cf_id *T)
{
    struct cf_id node, dept, user;
    cf_id_new(&node);
    cf_id_new(&dept);
    cf_id_new(&user);
    struct cf_acl_entry e[3] = {
        {.kind = CF_PRINCIPAL_DEPT, .principal = dept, .level = 2, .subdepartments = true},
        {.kind = CF_PRINCIPAL_USER, .principal = user, .level = 3},
        {.kind = CF_PRINCIPAL_TENANT, .level = 1},
    };
    CHECK_INT(cf_acl_put(s, T, &node, e, 3), CF_OK, "entries with a department");
    struct cf_acl_entry *got;
    size_t n;
    CHECK_INT(cf_acl_get(s, T, &node, &got, &n), CF_OK, "read back");
    CHECK(n == 3 && got[0].kind == CF_PRINCIPAL_DEPT && got[0].subdepartments && got[0].level == 2 &&
              !got[1].subdepartments && got[1].level == 3 && !got[2].subdepartments,
          "the flag on the department entry only");
    free(got);
    struct cf_grant *g;
    CHECK_INT(cf_grants_of(s, T, CF_PRINCIPAL_DEPT, &dept, &g, &n), CF_OK, "the grants index");
    CHECK(n == 1 && cf_id_equal(&g[0].node, &node) && g[0].level == 2 && g[0].subdepartments, "with the flag");
    free(g);
    e[0].subdepartments = false;
    CHECK_INT(cf_acl_put(s, T, &node, e, 1), CF_OK, "without the flag");
    CHECK_INT(cf_grants_of(s, T, CF_PRINCIPAL_DEPT, &dept, &g, &n), CF_OK, "the grants index again");
    CHECK(n == 1 && !g[0].subdepartments, "no flag");
    free(g);
    e[1].subdepartments = true;
    CHECK_INT(cf_acl_put(s, T, &node, &e[1], 1), CF_EINVAL, "the flag on a user entry");

    /* Old and hostile records, written behind the model's back. */
    const struct cf_tkeys *tk;
    CHECK_INT(cf_tkeys_get(s, T, &tk), CF_OK, "tenant keys");
    uint8_t key[32], ent[19];
    cf_key2(key, T, &node);
    for (int round = 0; round < 2; round++) {
        ent[0] = CF_PRINCIPAL_USER;
        memcpy(ent + 1, user.b, CF_ID_LEN);
        ent[17] = 4;
        ent[18] = 1;
        struct cf_rec_w w;
        cf_rec_w_init(&w);
        cf_rec_put_bytes(&w, 1, ent, round == 0 ? 18 : 19);
        struct cf_batch *b = cf_batch_new(s->eng);
        cf_seal_batch_put(b, s, CF_CF_ACL, &tk->record, key, sizeof key, &w, NULL, 0);
        CHECK_INT(cf_db_write(s, b, true), CF_OK, "a raw ACL record");
        cf_batch_free(b);
        cf_rec_w_free(&w);
        enum cf_status st = cf_acl_get(s, T, &node, &got, &n);
        if (round == 0) {
            CHECK(st == CF_OK && n == 1 && got[0].kind == CF_PRINCIPAL_USER && got[0].level == 4 &&
                      !got[0].subdepartments,
                  "an 18-byte entry (as before issue 23) decodes unchanged");
            if (st == CF_OK)
                free(got);
        } else {
            CHECK_INT(st, CF_ECORRUPT, "a flags byte on a user entry is corruption");
        }
    }
}

/* A deleted user is nobody's member: cf_user_delete drops their departments in its batch, so the
 * department can be deleted afterwards (no ghost member). */
static void deleted_user(struct cf_store *s, const struct cf_id *T)
{
    struct cf_dept d;
    struct cf_user u;
    struct cf_id *members;
    size_t nm = 99;
    memset(&u, 0, sizeof u);
    CHECK_INT(cf_dept_create(s, T, NULL, "Leavers", CF_SOURCE_LOCAL, &d), CF_OK, "a department");
    u.tenant = *T;
    u.username = cf_xstrdup("leaver");
    CHECK_INT(cf_user_create(s, &u), CF_OK, "a user");
    CHECK_INT(cf_user_set_depts(s, T, &u.id, &d.id, NULL, 0), CF_OK, "in it");
    u.status = CF_USER_OFFBOARDED;
    CHECK_INT(cf_user_put(s, &u), CF_OK, "offboarded");
    CHECK_INT(cf_user_delete(s, T, &u.id), CF_OK, "deleted");
    CHECK_INT(cf_dept_members(s, T, &d.id, &members, &nm), CF_OK, "members");
    CHECK_INT(nm, 0, "the deleted user is no member");
    free(members);
    struct cf_id primary, *others;
    size_t n = 99;
    CHECK_INT(cf_user_depts(s, T, &u.id, &primary, &others, &n), CF_OK, "their departments");
    CHECK(cf_id_is_zero(&primary) && n == 0, "none left");
    free(others);
    CHECK_INT(cf_dept_delete(s, T, &d.id), CF_OK, "the department can go");
    cf_dept_clear(&d);
    cf_user_clear(&u);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-dept-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t, u;
    memset(&t, 0, sizeof t);
    memset(&u, 0, sizeof u);
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK && cf_tenant_create(s, "other", &u) == CF_OK) {
        tree(s, &t.id);
        acl(s, &t.id);
        deleted_user(s, &t.id);
        struct cf_dept *ds;
        size_t n = 99;
        CHECK_INT(cf_dept_list(s, &u.id, &ds, &n), CF_OK, "another tenant's list");
        CHECK_INT(n, 0, "holds none of acme's departments");
        free(ds);
    } else {
        CHECK(false, "two tenants");
    }
    cf_store_close(s);
    cf_tenant_clear(&t);
    cf_tenant_clear(&u);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return tap_done();
}
