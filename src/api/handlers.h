/*
 * handlers.h: every HTTP handler, grouped by the file that implements it. route.c maps them to
 * methods and paths; nothing else calls them.
 */
#ifndef CF_HANDLERS_H
#define CF_HANDLERS_H

struct cf_req;
struct cf_store;

/* auth.c */
void cf_h_login(struct cf_req *r);
void cf_h_logout(struct cf_req *r);
void cf_h_me(struct cf_req *r);

/* me.c */
void cf_h_me_logins(struct cf_req *r);
void cf_h_me_sessions(struct cf_req *r);
void cf_h_me_session_delete(struct cf_req *r);
void cf_h_me_token_create(struct cf_req *r);
void cf_h_me_password(struct cf_req *r);
void cf_h_me_totp_enrol(struct cf_req *r);
void cf_h_me_totp_confirm(struct cf_req *r);
void cf_h_me_totp_disable(struct cf_req *r);
void cf_h_me_recovery_codes(struct cf_req *r);
void cf_h_me_alerts(struct cf_req *r);
void cf_h_me_watermark(struct cf_req *r);
/* apppw.c: app passwords (issue 22) */
void cf_h_me_apppw_create(struct cf_req *r);
void cf_h_me_apppw_list(struct cf_req *r);
void cf_h_me_apppw_revoke(struct cf_req *r);

/* admin.c */
void cf_h_admin_user_create(struct cf_req *r);
void cf_h_admin_users(struct cf_req *r);
void cf_h_admin_user_patch(struct cf_req *r);
void cf_h_admin_user_offboard(struct cf_req *r);

/* recovery.c */
void cf_h_admin_user_reset(struct cf_req *r);
void cf_h_admin_group_create(struct cf_req *r);
void cf_h_admin_groups(struct cf_req *r);
void cf_h_admin_group_members(struct cf_req *r);
void cf_h_admin_group_patch(struct cf_req *r);
void cf_h_admin_group_delete(struct cf_req *r);
/* dept.c (issue 23): departments, and a user's departments */
void cf_h_admin_depts(struct cf_req *r);
void cf_h_admin_dept_create(struct cf_req *r);
void cf_h_admin_dept_patch(struct cf_req *r);
void cf_h_admin_dept_delete(struct cf_req *r);
void cf_h_admin_dept_members(struct cf_req *r);
void cf_h_admin_user_depts(struct cf_req *r);
void cf_h_admin_user_delete(struct cf_req *r);
void cf_h_admin_policy_get(struct cf_req *r);
void cf_h_admin_scanner(struct cf_req *r);
void cf_h_admin_directory_sync(struct cf_req *r); /* dirsync.c (issue 23) */
void cf_h_admin_policy_patch(struct cf_req *r);

/* access.c */
void cf_h_acl_get(struct cf_req *r);
void cf_h_acl_put(struct cf_req *r);
void cf_h_directory(struct cf_req *r);
void cf_h_shared(struct cf_req *r);
/* WebDAV (dav.c): every method on /dav/{path*} */
void cf_h_dav(struct cf_req *r);

/* share.c */
void cf_h_share_create(struct cf_req *r);
void cf_h_share_list(struct cf_req *r);
void cf_h_share_revoke(struct cf_req *r);
void cf_h_admin_shares(struct cf_req *r);
void cf_h_admin_shares_revoke(struct cf_req *r);
void cf_h_share_page(struct cf_req *r);
void cf_h_share_unlock(struct cf_req *r);
void cf_h_share_info(struct cf_req *r);
void cf_h_share_content(struct cf_req *r);
void cf_h_share_view(struct cf_req *r);
void cf_h_share_children(struct cf_req *r);
void cf_h_share_file_content(struct cf_req *r);
void cf_h_share_file_view(struct cf_req *r);
void cf_h_share_zip(struct cf_req *r);
void cf_h_share_pages(struct cf_req *r);
void cf_h_share_pages_image(struct cf_req *r);
void cf_h_share_file_pages(struct cf_req *r);
void cf_h_share_file_pages_image(struct cf_req *r);

/* pages.c */
void cf_h_file_pages(struct cf_req *r);
void cf_h_file_page(struct cf_req *r);

/* provenance.c */
void cf_h_audit(struct cf_req *r);
void cf_h_file_activity(struct cf_req *r);

/* search.c */
void cf_h_search(struct cf_req *r);

/* trash.c */
void cf_h_trash_list(struct cf_req *r);
void cf_h_trash_empty(struct cf_req *r);
void cf_h_node_restore(struct cf_req *r);

/* versions.c */
void cf_h_file_versions(struct cf_req *r);
void cf_h_file_version_content(struct cf_req *r);
void cf_h_file_version_restore(struct cf_req *r);

/* files.c */
void cf_h_spaces(struct cf_req *r);
void cf_h_folder_create(struct cf_req *r);
/* zip.c */
void cf_h_folder_zip(struct cf_req *r);
void cf_h_node_get(struct cf_req *r);
void cf_h_node_children(struct cf_req *r);
void cf_h_node_patch(struct cf_req *r);
void cf_h_node_delete(struct cf_req *r);

/* upload.c */
void cf_h_file_upload(struct cf_req *r);

/* tus.c: resumable uploads (tus 1.0.0) */
void cf_h_tus_options(struct cf_req *r);
void cf_h_tus_create(struct cf_req *r);
void cf_h_tus_head(struct cf_req *r);
void cf_h_tus_patch(struct cf_req *r);
void cf_h_tus_delete(struct cf_req *r);
/* cf_tus_expire_now(): deletes expired unfinished uploads (worker or main thread; never a loop). */
void cf_tus_expire_now(struct cf_store *store);
/* cf_tus_claim_server(): the claim that keeps maintenance (expiry, key rotation, retention) off
 * resumable uploads a request is using right now. */
const struct cf_tus_claim *cf_tus_claim_server(void);
/* cf_tus_cluster(store): cluster mode: the claim is also a per-upload lease (storage.h cf_coord_claim),
 * so that two nodes never work on one upload at once; a claim a crashed node held expires. Once, at
 * start, before serving. */
void cf_tus_cluster(struct cf_store *store);

/* metrics.c: GET /metrics (the pipeline has checked metrics.allow) */
void cf_h_metrics(struct cf_req *r);

/* download.c */
void cf_h_file_content(struct cf_req *r);
void cf_h_file_view(struct cf_req *r);

/* web.c */
void cf_h_web_index(struct cf_req *r);
void cf_h_web_admin(struct cf_req *r);
void cf_h_web_account(struct cf_req *r);
void cf_h_web_static(struct cf_req *r);
void cf_h_healthz(struct cf_req *r);
#ifdef CF_FAULT_INJECTION
/* Fault-injection builds only (storage/fault.h): PUT /_test/fault?kind=K&n=N arms, GET reports. */
void cf_h_test_fault_arm(struct cf_req *r);
void cf_h_test_fault_get(struct cf_req *r);
#endif

#endif
