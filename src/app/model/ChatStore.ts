import type { Dialect, SqlDriver } from '../store/SqlDriver.js';
import { FriendModel } from './FriendModel.js';
import { GroupModel } from './GroupModel.js';
import { MessageModel, type MessageModelOptions } from './MessageModel.js';
import { UserModel } from './UserModel.js';

/** Everything the business layer needs from storage; the SQL engine behind it is not its concern. */
export interface ChatStore {
  readonly dialect: Dialect;
  readonly users: UserModel;
  readonly friends: FriendModel;
  readonly groups: GroupModel;
  readonly messages: MessageModel;
  /** Closes the database; later calls fail with StoreError UNAVAILABLE. */
  close(): Promise<void>;
}

/** The models over an open, migrated driver (see openStore). */
export function createChatStore(driver: SqlDriver, messages: MessageModelOptions = {}): ChatStore {
  return {
    dialect: driver.dialect,
    users: new UserModel(driver),
    friends: new FriendModel(driver),
    groups: new GroupModel(driver),
    messages: new MessageModel(driver, messages),
    close: () => driver.close(),
  };
}
