// The SqliteStore's rows, read back as written: apps, releases, configs,
// hosts, events, alerts and API tokens (rollouts: store_rollout_test.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(StoreTest, App_UpsertSetsCreatedOnlyWhenNew) {
  bool created = false;
  ASSERT_OK(store_->UpsertApp(MakeApp("web", 1000), &created));
  EXPECT_TRUE(created);

  App changed = MakeApp("web", 2000);
  changed.mutable_spec()->set_keep_releases(7);
  changed.set_spec_yaml("name: web\nkeep_releases: 7\n");
  ASSERT_OK(store_->UpsertApp(changed, &created));
  EXPECT_FALSE(created);

  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->spec().keep_releases(), 7);
  EXPECT_EQ(app->spec().health(0).http(), "http://127.0.0.1:8080/healthz");
  EXPECT_EQ(app->spec_yaml(), "name: web\nkeep_releases: 7\n");
  EXPECT_EQ(app->updated_at_ms(), 2000);
}

TEST_F(StoreTest, App_UpsertKeepsDesiredVersionSetByRollouts) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v2"));
  // A re-applied spec carries no desired version; it must not erase it.
  ASSERT_OK(store_->UpsertApp(MakeApp("web", 3000), nullptr));
  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->desired_version(), "v2");
}

TEST_F(StoreTest, App_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetApp("nope"), StatusIs(absl::StatusCode::kNotFound, "unknown app 'nope'"));
  EXPECT_THAT(store_->SetDesired("nope", fleet::v1::SUBJECT_RELEASE, "v1"),
              StatusIs(absl::StatusCode::kNotFound, "unknown app 'nope'"));
}

TEST_F(StoreTest, App_UpsertWithoutNameIsInvalidArgument) {
  EXPECT_THAT(store_->UpsertApp(MakeApp(""), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, App_ListIsSortedByName) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("db"), nullptr));
  absl::StatusOr<std::vector<App>> apps = store_->ListApps();
  ASSERT_OK(apps);
  std::vector<std::string> names;
  for (const App& app : *apps) names.push_back(app.spec().name());
  EXPECT_THAT(names, ElementsAre("api", "db", "web"));
}

TEST_F(StoreTest, Release_InsertRoundTripsEveryField) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Release release = MakeRelease("web", "v1");
  (*release.mutable_metadata())["git"] = "3fa9c1";
  (*release.mutable_metadata())["note, with=odd\nchars"] = "line 1\nline \"2\"";
  // What agents verify against the app's trusted_keys (common/signing.h).
  release.set_signature(std::string(86, 'A') + "==");
  ASSERT_OK(store_->InsertRelease(release));

  absl::StatusOr<Release> got = store_->GetRelease("web", "v1");
  ASSERT_OK(got);
  // Map order in the wire format is unspecified: compare field by field.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, release))
      << got->DebugString();
  EXPECT_EQ(got->metadata().at("note, with=odd\nchars"), "line 1\nline \"2\"");
}

TEST_F(StoreTest, Release_InsertTwiceIsAlreadyExists) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertRelease(MakeRelease("web", "v1")));
  Release again = MakeRelease("web", "v1");
  again.set_sha256(std::string(64, 'b'));
  EXPECT_THAT(store_->InsertRelease(again),
              StatusIs(absl::StatusCode::kAlreadyExists, "release web@v1 exists already"));
  absl::StatusOr<Release> got = store_->GetRelease("web", "v1");
  ASSERT_OK(got);
  EXPECT_EQ(got->sha256(), std::string(64, 'a'));
}

TEST_F(StoreTest, Release_OfUnknownAppIsNotFound) {
  absl::Status status = store_->InsertRelease(MakeRelease("ghost", "v1"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown app 'ghost'"));
}

TEST_F(StoreTest, Release_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetRelease("web", "v9"),
              StatusIs(absl::StatusCode::kNotFound, "unknown release web@v9"));
}

TEST_F(StoreTest, Release_ListIsOldestFirstAndPerApp) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  // Same created_at_ms and versions that sort differently as text: the order
  // is the order of the pushes.
  for (const char* version : {"v2", "v10", "v1"}) {
    ASSERT_OK(store_->InsertRelease(MakeRelease("web", version)));
  }
  ASSERT_OK(store_->InsertRelease(MakeRelease("api", "v5")));
  absl::StatusOr<std::vector<Release>> releases = store_->ListReleases("web");
  ASSERT_OK(releases);
  EXPECT_THAT(Versions(*releases), ElementsAre("v2", "v10", "v1"));
  absl::StatusOr<std::vector<Release>> none = store_->ListReleases("nope");
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, Host_LabelsWithSeparatorsRoundTrip) {
  Host host;
  host.set_id("web-01");
  host.set_connected(true);
  host.set_last_seen_ms(4242);
  host.set_agent_version("0.1.0");
  host.set_peer("ipv4:10.0.0.5:51234");
  auto& labels = *host.mutable_labels();
  labels["env"] = "prod";
  labels["list"] = "a,b,c";
  labels["pair"] = "k=v";
  labels["multi,line=key"] = "first\nsecond\r\nthird";
  labels["quotes"] = "\"{[\\]}\" '";
  labels["unicode"] = "zürich ☃";
  labels["empty"] = "";
  ASSERT_OK(store_->UpsertHost(host));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  EXPECT_EQ(got->labels().size(), labels.size());
  for (const auto& [key, value] : labels) {
    ASSERT_EQ(got->labels().count(key), 1u) << key;
    EXPECT_EQ(got->labels().at(key), value) << key;
  }
  EXPECT_TRUE(got->connected());
  EXPECT_EQ(got->last_seen_ms(), 4242);
  EXPECT_EQ(got->agent_version(), "0.1.0");
  EXPECT_EQ(got->peer(), "ipv4:10.0.0.5:51234");
}

TEST_F(StoreTest, Host_StoredLabelsThatAreNotAJsonObjectAreDataLoss) {
  Host host;
  host.set_id("web-01");
  ASSERT_OK(store_->UpsertHost(host));
  for (const char* labels : {"not json", "[\"a\"]", "{\"env\": 3}"}) {
    ExecAll(path(), absl::StrCat("UPDATE hosts SET labels = '", labels, "'"));
    absl::StatusOr<Host> got = store_->GetHost("web-01");
    EXPECT_THAT(got, StatusIs(absl::StatusCode::kDataLoss)) << labels;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("labels of host 'web-01'"));
  }
}

TEST_F(StoreTest, Host_UpsertReplacesAppStates) {
  Host host;
  host.set_id("web-01");
  HostAppState* web = host.add_apps();
  web->set_app("web");
  web->set_current_release("v2");
  web->add_releases("v1");
  web->add_releases("v2, with \"quotes\"\nand newline");
  web->set_last_known_good("v1");
  web->set_previous_release("v1");
  host.add_apps()->set_app("worker");
  ASSERT_OK(store_->UpsertHost(host));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 2);
  EXPECT_EQ(got->apps(0).SerializeAsString(), web->SerializeAsString())
      << got->apps(0).DebugString();
  EXPECT_EQ(got->apps(1).app(), "worker");

  Host replaced;
  replaced.set_id("web-01");
  replaced.add_apps()->set_app("api");
  ASSERT_OK(store_->UpsertHost(replaced));
  got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).app(), "api");
}

TEST_F(StoreTest, Host_UpsertWithAppReportedTwiceChangesNothing) {
  Host host;
  host.set_id("web-01");
  host.set_agent_version("0.1.0");
  host.add_apps()->set_app("web");
  ASSERT_OK(store_->UpsertHost(host));

  Host bad;
  bad.set_id("web-01");
  bad.set_agent_version("0.2.0");
  bad.add_apps()->set_app("api");
  bad.add_apps()->set_app("api");
  EXPECT_THAT(store_->UpsertHost(bad), StatusIs(absl::StatusCode::kInvalidArgument));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  EXPECT_EQ(got->agent_version(), "0.1.0");
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).app(), "web");
}

TEST_F(StoreTest, Host_UpsertAppStateReplacesOneApp) {
  Host host;
  host.set_id("web-01");
  host.add_apps()->set_app("web");
  host.add_apps()->set_app("worker");
  ASSERT_OK(store_->UpsertHost(host));

  HostAppState state;
  state.set_app("web");
  state.set_current_release("v3");
  state.add_releases("v3");
  ASSERT_OK(store_->UpsertHostAppState("web-01", state));
  HostAppState added;
  added.set_app("api");
  ASSERT_OK(store_->UpsertHostAppState("web-01", added));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 3);
  EXPECT_EQ(got->apps(0).app(), "api");
  EXPECT_EQ(got->apps(1).current_release(), "v3");
  EXPECT_THAT(got->apps(1).releases(), ElementsAre("v3"));
  EXPECT_EQ(got->apps(2).app(), "worker");
}

TEST_F(StoreTest, Host_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetHost("nope"),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
  EXPECT_THAT(store_->SetHostConnected("nope", true, 1),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
  HostAppState state;
  state.set_app("web");
  EXPECT_THAT(store_->UpsertHostAppState("nope", state),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
}

TEST_F(StoreTest, Host_ConnectedFlagFollowsSessions) {
  for (const char* id : {"b", "a"}) {
    Host host;
    host.set_id(id);
    host.set_connected(true);
    host.set_last_seen_ms(100);
    ASSERT_OK(store_->UpsertHost(host));
  }
  ASSERT_OK(store_->SetHostConnected("a", false, 200));
  absl::StatusOr<Host> a = store_->GetHost("a");
  ASSERT_OK(a);
  EXPECT_FALSE(a->connected());
  EXPECT_EQ(a->last_seen_ms(), 200);

  ASSERT_OK(store_->MarkAllHostsDisconnected());
  absl::StatusOr<std::vector<Host>> hosts = store_->ListHosts();
  ASSERT_OK(hosts);
  ASSERT_EQ(hosts->size(), 2u);
  for (const Host& host : *hosts) EXPECT_FALSE(host.connected()) << host.id();
}

TEST_F(StoreTest, Host_ListIsSortedByIdWithAppStates) {
  for (const char* id : {"web-02", "web-01", "db-01"}) {
    Host host;
    host.set_id(id);
    host.add_apps()->set_app(absl::StrCat("app-of-", id));
    ASSERT_OK(store_->UpsertHost(host));
  }
  absl::StatusOr<std::vector<Host>> hosts = store_->ListHosts();
  ASSERT_OK(hosts);
  std::vector<std::string> ids;
  for (const Host& host : *hosts) {
    ids.push_back(host.id());
    ASSERT_EQ(host.apps_size(), 1);
    EXPECT_EQ(host.apps(0).app(), absl::StrCat("app-of-", host.id()));
  }
  EXPECT_THAT(ids, ElementsAre("db-01", "web-01", "web-02"));
}

TEST_F(StoreTest, Host_ListOfOneAppHasItsStateOnEveryHostThatReportedItSortedById) {
  for (const char* id : {"web-02", "web-01", "db-01"}) {
    Host host;
    host.set_id(id);
    host.set_connected(std::string(id) == "web-02");
    HostAppState* web = host.add_apps();
    web->set_app("web");
    web->set_current_release(absl::StrCat("v-", id));
    web->add_releases("v0");
    if (std::string(id) == "db-01") host.mutable_apps(0)->set_app("db");
    host.add_apps()->set_app("other");
    ASSERT_OK(store_->UpsertHost(host));
  }
  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> hosts = store_->ListAppHosts("web");
  ASSERT_OK(hosts);
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[0].host_id(), "web-01");
  EXPECT_FALSE((*hosts)[0].connected());
  EXPECT_EQ((*hosts)[0].state().current_release(), "v-web-01");
  EXPECT_THAT((*hosts)[0].state().releases(), ElementsAre("v0"));
  EXPECT_EQ((*hosts)[1].host_id(), "web-02");
  EXPECT_TRUE((*hosts)[1].connected());
  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> none = store_->ListAppHosts("nope");
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, Event_ListIsNewestFirstFilteredByAppAndLimited) {
  std::vector<int64_t> ids;
  for (const auto& [app, kind] : std::vector<std::pair<std::string, std::string>>{
           {"web", "a"}, {"api", "b"}, {"web", "c"}, {"", "d"}, {"web", "e"}}) {
    Event event = MakeEvent(app, kind);
    event.set_rollout_id("3");
    event.set_host_id("web-01");
    ASSERT_OK(store_->AddEvent(&event));
    if (!ids.empty()) {
      EXPECT_GT(event.id(), ids.back());
    }
    ids.push_back(event.id());
  }
  absl::StatusOr<std::vector<Event>> all = store_->ListEvents("", 0);
  ASSERT_OK(all);
  EXPECT_THAT(Kinds(*all), ElementsAre("e", "d", "c", "b", "a"));
  EXPECT_EQ((*all)[0].id(), ids.back());
  EXPECT_EQ((*all)[0].message(), "e of web");
  EXPECT_EQ((*all)[0].actor(), "alice");
  EXPECT_EQ((*all)[0].rollout_id(), "3");
  EXPECT_EQ((*all)[0].host_id(), "web-01");
  EXPECT_EQ((*all)[0].at_ms(), 9000);

  absl::StatusOr<std::vector<Event>> web = store_->ListEvents("web", 0);
  ASSERT_OK(web);
  EXPECT_THAT(Kinds(*web), ElementsAre("e", "c", "a"));
  absl::StatusOr<std::vector<Event>> limited = store_->ListEvents("web", 2);
  ASSERT_OK(limited);
  EXPECT_THAT(Kinds(*limited), ElementsAre("e", "c"));
}

TEST_F(StoreTest, Config_InsertRoundTripsEveryFieldAndListsInPushOrder) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c2")));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c1")));
  absl::StatusOr<fleet::v1::ConfigRelease> got = store_->GetConfig("web", "c2");
  ASSERT_OK(got);
  EXPECT_EQ(got->DebugString(), MakeConfig("web", "c2").DebugString());
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> all = store_->ListConfigs("web");
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].version(), "c2");
  EXPECT_EQ((*all)[1].version(), "c1");
}

TEST_F(StoreTest, Config_InsertTwiceIsAlreadyExistsAndUnknownAppIsNotFound) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c1")));
  EXPECT_THAT(store_->InsertConfig(MakeConfig("web", "c1")),
              StatusIs(absl::StatusCode::kAlreadyExists, "config web@c1 exists already"));
  EXPECT_THAT(
      store_->InsertConfig(MakeConfig("api", "c1")),
      StatusIs(absl::StatusCode::kNotFound, "cannot insert config api@c1: unknown app 'api'"));
  EXPECT_THAT(store_->GetConfig("web", "c9"),
              StatusIs(absl::StatusCode::kNotFound, "unknown config web@c9"));
}

TEST_F(StoreTest, Config_DesiredConfigIsSeparateFromDesiredVersion) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v2"));
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_CONFIG, "c3"));
  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->desired_version(), "v2");
  EXPECT_EQ(app->desired_config(), "c3");
  EXPECT_THAT(store_->SetDesired("nope", fleet::v1::SUBJECT_CONFIG, "c1"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Config_HostConfigStateAndRolloutPairRoundTrip) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Host host;
  host.set_id("web-01");
  HostAppState* state = host.add_apps();
  state->set_app("web");
  state->set_current_release("v2");
  state->set_current_config("c2");
  state->add_configs("c1");
  state->add_configs("c2");
  state->set_last_good_config("c2");
  state->set_previous_config("c1");
  ASSERT_OK(store_->UpsertHost(host));
  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).DebugString(), state->DebugString());

  Rollout rollout = MakeRollout("web", "c2", {MakeTask("web-01", 0)});
  rollout.set_subject(fleet::v1::SUBJECT_CONFIG);
  rollout.set_release("v2");
  rollout.set_config("c2");
  ASSERT_OK(store_->CreateRollout(&rollout));
  absl::StatusOr<Rollout> read = store_->GetRollout(rollout.id());
  ASSERT_OK(read);
  EXPECT_EQ(read->subject(), fleet::v1::SUBJECT_CONFIG);
  EXPECT_EQ(read->release(), "v2");
  EXPECT_EQ(read->config(), "c2");
}

TEST_F(StoreTest, Alert_InsertRoundTripsAndSecondInsertOfTheKeyIsAlreadyExists) {
  ASSERT_OK(store_->InsertAlert(MakeAlertRecord("firing")));
  AlertRecord again = MakeAlertRecord("firing");
  again.outcome = AlertOutcome::kIgnored;
  EXPECT_THAT(store_->InsertAlert(again), StatusIs(absl::StatusCode::kAlreadyExists));
  // The same alert resolved is another key; alerts need no app row.
  AlertRecord resolved = MakeAlertRecord("resolved");
  resolved.app = "unknown-app";
  EXPECT_OK(store_->InsertAlert(resolved));

  absl::StatusOr<AlertRecord> got = store_->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing");
  ASSERT_OK(got);
  EXPECT_EQ(got->app, "web");
  EXPECT_EQ(got->alertname, "HighErrorRate");
  EXPECT_EQ(got->received_at_ms, 9000);
  EXPECT_EQ(got->outcome, AlertOutcome::kActing);  // the first insert stays
  EXPECT_EQ(got->message, "rolling back release v2");
  EXPECT_THAT(store_->GetAlert("4f1c2a", "2024-05-01T12:30:00Z", "firing"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Alert_UpdateWritesOutcomeRolloutAndMessageAndSurvivesReopen) {
  ASSERT_OK(store_->InsertAlert(MakeAlertRecord("firing")));
  AlertRecord done = MakeAlertRecord("firing");
  done.outcome = AlertOutcome::kRollback;
  done.rollout_id = "12";
  done.message = "rollback 12 goes to v1";
  done.app = "ignored-by-update";
  ASSERT_OK(store_->UpdateAlert(done));
  EXPECT_THAT(store_->UpdateAlert(MakeAlertRecord("resolved")),
              StatusIs(absl::StatusCode::kNotFound));
  store_.reset();

  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenSqliteStore(path());
  ASSERT_OK(reopened);
  absl::StatusOr<AlertRecord> got =
      (*reopened)->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing");
  ASSERT_OK(got);
  EXPECT_EQ(got->outcome, AlertOutcome::kRollback);
  EXPECT_EQ(got->rollout_id, "12");
  EXPECT_EQ(got->message, "rollback 12 goes to v1");
  EXPECT_EQ(got->app, "web");
}

TEST_F(StoreTest, Token_InsertRoundTripsEveryFieldAndIsFoundByHashOnly) {
  fleet::v1::TokenInfo deployer = MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_DEPLOYER, "api");
  ASSERT_OK(store_->InsertToken(deployer, std::string(64, 'd')));
  absl::StatusOr<fleet::v1::TokenInfo> got = store_->FindTokenByHash(std::string(64, 'd'));
  ASSERT_OK(got);
  EXPECT_EQ(got->DebugString(), deployer.DebugString());
  EXPECT_THAT(store_->FindTokenByHash(std::string(64, 'e')),
              StatusIs(absl::StatusCode::kNotFound));
  // The id is not a hash.
  EXPECT_THAT(store_->FindTokenByHash("3fa9c2d4e5f6"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Token_InsertWithStoredIdOrHashIsAlreadyExistsAndKeepsTheFirst) {
  ASSERT_OK(store_->InsertToken(MakeToken("aaaaaaaaaaaa", fleet::v1::ROLE_VIEWER),
                                std::string(64, 'a')));
  EXPECT_THAT(store_->InsertToken(MakeToken("aaaaaaaaaaaa", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'b')),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->InsertToken(MakeToken("bbbbbbbbbbbb", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'a')),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->InsertToken(MakeToken("cccccccccccc", fleet::v1::ROLE_UNSPECIFIED),
                                  std::string(64, 'c')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->InsertToken(MakeToken("", fleet::v1::ROLE_VIEWER), std::string(64, 'c')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> tokens = store_->ListTokens();
  ASSERT_OK(tokens);
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].role(), fleet::v1::ROLE_VIEWER);
  EXPECT_EQ(store_->CountTokens().value_or(-1), 1);
}

TEST_F(StoreTest, Token_ListIsCreationOrderAndCountIncludesRevoked) {
  EXPECT_EQ(store_->CountTokens().value_or(-1), 0);
  ASSERT_OK(store_->InsertToken(MakeToken("ffffffffffff", fleet::v1::ROLE_ADMIN),
                                std::string(64, 'f')));
  ASSERT_OK(store_->InsertToken(MakeToken("111111111111", fleet::v1::ROLE_VIEWER),
                                std::string(64, '1')));
  ASSERT_OK(store_->RevokeToken("ffffffffffff", 6000));
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> tokens = store_->ListTokens();
  ASSERT_OK(tokens);
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].id(), "ffffffffffff");
  EXPECT_EQ((*tokens)[1].id(), "111111111111");
  EXPECT_EQ(store_->CountTokens().value_or(-1), 2);
}

TEST_F(StoreTest, Token_RevokeKeepsTheRowAndTheFirstRevocationTime) {
  ASSERT_OK(store_->InsertToken(MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_DEPLOYER, "api"),
                                std::string(64, 'd')));
  absl::StatusOr<fleet::v1::TokenInfo> revoked = store_->RevokeToken("3fa9c2d4e5f6", 6000);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->revoked_at_ms(), 6000);
  EXPECT_EQ(revoked->app(), "api");
  revoked = store_->RevokeToken("3fa9c2d4e5f6", 7000);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->revoked_at_ms(), 6000);
  absl::StatusOr<fleet::v1::TokenInfo> found = store_->FindTokenByHash(std::string(64, 'd'));
  ASSERT_OK(found);
  EXPECT_EQ(found->revoked_at_ms(), 6000);
  EXPECT_THAT(store_->RevokeToken("000000000000", 6000),
              StatusIs(absl::StatusCode::kNotFound, "unknown API token '000000000000'"));
}

}  // namespace
}  // namespace fleet::controller
